// Package alert is the dashboard's domain: alerts raised from frustration
// events and their state machine (open → acknowledged → resolved), the
// interventions teachers record, teachers' classroom assignments, and a
// student's one status by precedence (critical > idle > misuse > struggle >
// ok). It owns the Repository interface its adapters implement and knows
// nothing of gRPC, SQL or the metrics service.
package alert
