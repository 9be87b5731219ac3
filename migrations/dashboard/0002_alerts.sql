-- Teachers' classroom assignments, alerts raised from frustration events, the
-- interventions teachers recorded, and the follower's checkpoint in the metrics
-- service's frustration event stream (docs/DASHBOARD.md).
--
-- Every primary key and unique index starts with classroom_id, so that the
-- tables can be distributed by classroom (DESIGN.md, "Beyond one machine"); the
-- one index by teacher serves ListTeacherClassrooms.

CREATE TABLE classroom_assignments (
    classroom_id text        NOT NULL,
    teacher_id   text        NOT NULL,
    display_name text        NOT NULL DEFAULT '',
    assigned_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (classroom_id, teacher_id)
);
CREATE INDEX classroom_assignments_by_teacher ON classroom_assignments (teacher_id, classroom_id);

-- alert_id orders alerts for subscribers, who resume "after" an id. Ids are
-- taken only by the follower, inside the transaction that holds the
-- checkpoint row's lock, so alerts commit in id order: a reader that saw
-- alert N can never later find a committed alert below N (no outbox gaps).
CREATE SEQUENCE alert_ids;

CREATE TABLE alerts (
    classroom_id         text        NOT NULL,
    alert_id             bigint      NOT NULL,
    frustration_event_id bigint      NOT NULL,
    app_id               text        NOT NULL DEFAULT '',
    student_id           text        NOT NULL DEFAULT '',
    item_id              text        NOT NULL DEFAULT '',
    indicator            smallint    NOT NULL,
    severity             smallint    NOT NULL,
    reasons              text[]      NOT NULL DEFAULT '{}',
    triggered_at         timestamptz NOT NULL,
    state                text        NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'acknowledged', 'resolved')),
    created_at           timestamptz NOT NULL DEFAULT now(),
    acknowledged_at      timestamptz,
    acknowledged_by      text        NOT NULL DEFAULT '',
    resolved_at          timestamptz,
    resolved_by          text        NOT NULL DEFAULT '',
    outcome              smallint    NOT NULL DEFAULT 0,
    resolution_notes     text        NOT NULL DEFAULT '',
    PRIMARY KEY (classroom_id, alert_id),
    -- One alert per frustration event, whatever replays the follower sees.
    UNIQUE (classroom_id, frustration_event_id)
);
-- Subscriptions and the fan-out read "alerts after id N" across classrooms.
CREATE INDEX alerts_by_id ON alerts (alert_id);
-- The overview reads a classroom's recent and unresolved alerts per student.
CREATE INDEX alerts_unresolved ON alerts (classroom_id, student_id, alert_id) WHERE state <> 'resolved';

CREATE TABLE interventions (
    classroom_id    text        NOT NULL,
    intervention_id uuid        NOT NULL,
    alert_id        bigint      NOT NULL,
    teacher_id      text        NOT NULL,
    action          smallint    NOT NULL,
    notes           text        NOT NULL DEFAULT '',
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (classroom_id, intervention_id),
    FOREIGN KEY (classroom_id, alert_id) REFERENCES alerts (classroom_id, alert_id)
);
CREATE INDEX interventions_by_alert ON interventions (classroom_id, alert_id);

-- The last frustration event id turned into alerts. One row; the follower
-- locks it for the whole of each batch, which serialises replicas.
CREATE TABLE follower_checkpoint (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    after_id  bigint      NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO follower_checkpoint (singleton) VALUES (true);
