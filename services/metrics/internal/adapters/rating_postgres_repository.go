package adapters

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gaia-platform/gaia/services/metrics/internal/domain/usability"
)

// RatingPostgresRepository implements usability.RatingStore.
type RatingPostgresRepository struct {
	pool *pgxpool.Pool
}

// NewRatingPostgresRepository returns the ratings repository.
func NewRatingPostgresRepository(pool *pgxpool.Pool) *RatingPostgresRepository {
	return &RatingPostgresRepository{pool: pool}
}

var _ usability.RatingStore = (*RatingPostgresRepository)(nil)

// Insert stores r, or returns the rating already stored under its id.
func (r *RatingPostgresRepository) Insert(ctx context.Context, in usability.Rating) (usability.Rating, bool, error) {
	var out usability.Rating
	var rating int16
	err := r.pool.QueryRow(ctx, `
		INSERT INTO metrics.ratings (classroom_id, app_id, rating_id, student_id, item_id, rating, feedback, occurred_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (classroom_id, app_id, rating_id) DO NOTHING
		RETURNING classroom_id, app_id, rating_id, student_id, item_id, rating, feedback, occurred_at`,
		in.ClassroomID, in.AppID, in.RatingID, in.StudentID, in.ItemID, int16(in.Rating), in.Feedback, in.OccurredAt,
	).Scan(&out.ClassroomID, &out.AppID, &out.RatingID, &out.StudentID, &out.ItemID, &rating, &out.Feedback, &out.OccurredAt)
	if err == nil {
		out.Rating = int(rating)
		return out, false, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return out, false, err
	}
	// Already stored (ON CONFLICT returned nothing): read it back. The row
	// cannot go away in between: ratings are never deleted by the service.
	err = r.pool.QueryRow(ctx, `
		SELECT classroom_id, app_id, rating_id, student_id, item_id, rating, feedback, occurred_at
		FROM metrics.ratings WHERE classroom_id = $1 AND app_id = $2 AND rating_id = $3`,
		in.ClassroomID, in.AppID, in.RatingID,
	).Scan(&out.ClassroomID, &out.AppID, &out.RatingID, &out.StudentID, &out.ItemID, &rating, &out.Feedback, &out.OccurredAt)
	out.Rating = int(rating)
	return out, true, err
}

// Summary counts the ratings f selects, by value.
func (r *RatingPostgresRepository) Summary(ctx context.Context, f usability.RatingFilter) (usability.RatingSummary, error) {
	var s usability.RatingSummary
	rows, err := r.pool.Query(ctx, `
		SELECT rating, count(*) FROM metrics.ratings
		WHERE ($1 = '' OR classroom_id = $1) AND ($2 = '' OR app_id = $2) AND ($3 = '' OR item_id = $3)
		  AND occurred_at >= $4 AND occurred_at < $5
		GROUP BY rating`, f.ClassroomID, f.AppID, f.ItemID, f.From, f.To)
	if err != nil {
		return s, err
	}
	var rating int16
	var n int64
	var sum int64
	if _, err := pgx.ForEachRow(rows, []any{&rating, &n}, func() error {
		if rating >= 1 && rating <= 5 {
			s.Distribution[rating-1] = n
			s.Count += n
			sum += int64(rating) * n
		}
		return nil
	}); err != nil {
		return s, err
	}
	if s.Count > 0 {
		s.Mean = float64(sum) / float64(s.Count)
	}
	return s, nil
}
