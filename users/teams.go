package users

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/herald-im/herald/access"
	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/invalid"
)

// Team is a named group of people the inbox routes conversations to.
// Members are usually agents; admins may be members too (a support lead),
// marketers may not, since they do not read conversations.
type Team struct {
	ID          int64        `json:"id"`
	Name        string       `json:"name"`
	Description string       `json:"description"`
	MemberCount int          `json:"member_count"`
	Members     []TeamMember `json:"members,omitempty"`
	CreatedAt   time.Time    `json:"created_at"`
	UpdatedAt   time.Time    `json:"updated_at"`
}

// TeamMember is a team's member as a team lists them.
type TeamMember struct {
	UserID int64       `json:"user_id"`
	Name   string      `json:"name"`
	Email  string      `json:"email"`
	Role   access.Role `json:"role"`
	State  State       `json:"state"`
}

func checkTeam(name, description string) (string, string, error) {
	name, err := checkName("name", name)
	if err != nil {
		return "", "", err
	}
	description = strings.TrimSpace(description)
	switch {
	case !utf8.ValidString(description):
		return "", "", invalid.Field("description", "must be valid UTF-8")
	case utf8.RuneCountInString(description) > 1000:
		return "", "", invalid.Field("description", "must be at most 1000 characters")
	case strings.ContainsRune(description, 0):
		return "", "", invalid.Field("description", "must not contain NUL")
	}
	return name, description, nil
}

const teamColumns = `t.id, t.name, t.description, (SELECT count(*) FROM team_members m WHERE m.team_id = t.id), t.created_at, t.updated_at`

func scanTeam(row pgx.Row) (Team, error) {
	var t Team
	err := row.Scan(&t.ID, &t.Name, &t.Description, &t.MemberCount, &t.CreatedAt, &t.UpdatedAt)
	return t, err
}

// CreateTeam makes a team; names are unique regardless of case.
func (s *Service) CreateTeam(ctx context.Context, actor audit.Actor, name, description string) (Team, error) {
	name, description, err := checkTeam(name, description)
	if err != nil {
		return Team{}, err
	}
	var t Team
	err = pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO teams (name, description) VALUES ($1, $2) RETURNING id, name, description, 0, created_at, updated_at`,
			name, description).Scan(&t.ID, &t.Name, &t.Description, &t.MemberCount, &t.CreatedAt, &t.UpdatedAt)
		if isUniqueViolation(err) {
			return fmt.Errorf("%w: a team with this name exists", ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("users: create team: %w", err)
		}
		return audit.Record(ctx, tx, actor, audit.Change{Action: "team.create", ObjectType: "team", ObjectID: fmt.Sprint(t.ID)})
	})
	return t, err
}

// ListTeams returns every team with its member count, by name.
func (s *Service) ListTeams(ctx context.Context) ([]Team, error) {
	rows, err := s.db.Query(ctx, `SELECT `+teamColumns+` FROM teams t ORDER BY lower(t.name)`)
	if err != nil {
		return nil, fmt.Errorf("users: list teams: %w", err)
	}
	defer rows.Close()
	teams := []Team{}
	for rows.Next() {
		t, err := scanTeam(rows)
		if err != nil {
			return nil, fmt.Errorf("users: unable to fetch team: %w", err)
		}
		teams = append(teams, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("users: list teams: %w", err)
	}
	return teams, nil
}

// GetTeam returns a team with its members.
func (s *Service) GetTeam(ctx context.Context, id int64) (Team, error) {
	t, err := scanTeam(s.db.QueryRow(ctx, `SELECT `+teamColumns+` FROM teams t WHERE t.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Team{}, ErrNotFound
	}
	if err != nil {
		return Team{}, fmt.Errorf("users: unable to fetch team %d: %w", id, err)
	}
	const q = `
		SELECT u.id, u.name, u.email, u.role, u.state
		FROM team_members m JOIN users u ON u.id = m.user_id
		WHERE m.team_id = $1
		ORDER BY lower(u.name), u.id`
	rows, err := s.db.Query(ctx, q, id)
	if err != nil {
		return Team{}, fmt.Errorf("users: team members: %w", err)
	}
	defer rows.Close()
	t.Members = []TeamMember{}
	for rows.Next() {
		var m TeamMember
		if err := rows.Scan(&m.UserID, &m.Name, &m.Email, &m.Role, &m.State); err != nil {
			return Team{}, fmt.Errorf("users: unable to fetch team member: %w", err)
		}
		t.Members = append(t.Members, m)
	}
	if err := rows.Err(); err != nil {
		return Team{}, fmt.Errorf("users: team members: %w", err)
	}
	return t, nil
}

// UpdateTeam renames a team or changes its description; nil leaves a field.
func (s *Service) UpdateTeam(ctx context.Context, actor audit.Actor, id int64, name, description *string) (Team, error) {
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var curName, curDesc string
		err := tx.QueryRow(ctx, `SELECT name, description FROM teams WHERE id = $1 FOR UPDATE`, id).Scan(&curName, &curDesc)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("users: update team %d: %w", id, err)
		}
		var fields []string
		if name != nil {
			curName, fields = *name, append(fields, "name")
		}
		if description != nil {
			curDesc, fields = *description, append(fields, "description")
		}
		n, d, err := checkTeam(curName, curDesc)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE teams SET name = $2, description = $3, updated_at = now() WHERE id = $1`, id, n, d)
		if isUniqueViolation(err) {
			return fmt.Errorf("%w: a team with this name exists", ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("users: update team %d: %w", id, err)
		}
		return audit.Record(ctx, tx, actor, audit.Change{Action: "team.update", ObjectType: "team", ObjectID: fmt.Sprint(id),
			Summary: map[string]any{"fields": fields}})
	})
	if err != nil {
		return Team{}, err
	}
	return s.GetTeam(ctx, id)
}

// DeleteTeam removes a team and its memberships.
func (s *Service) DeleteTeam(ctx context.Context, actor audit.Actor, id int64) error {
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM teams WHERE id = $1`, id)
		if err != nil {
			return fmt.Errorf("users: delete team %d: %w", id, err)
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		return audit.Record(ctx, tx, actor, audit.Change{Action: "team.delete", ObjectType: "team", ObjectID: fmt.Sprint(id)})
	})
}

// AddTeamMember puts a user in a team (again: no change). Marketers cannot
// be members: they do not read conversations.
func (s *Service) AddTeamMember(ctx context.Context, actor audit.Actor, teamID, userID int64) error {
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var role access.Role
		err := tx.QueryRow(ctx, `SELECT role FROM users WHERE id = $1`, userID).Scan(&role)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("users: add team member: %w", err)
		}
		if role == access.RoleMarketer {
			return invalid.Field("user", "marketers cannot be in a team: teams answer conversations")
		}
		tag, err := tx.Exec(ctx, `INSERT INTO team_members (team_id, user_id)
			SELECT id, $2 FROM teams WHERE id = $1
			ON CONFLICT DO NOTHING`, teamID, userID)
		if err != nil {
			return fmt.Errorf("users: add team member: %w", err)
		}
		if tag.RowsAffected() == 0 {
			var exists bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM teams WHERE id = $1)`, teamID).Scan(&exists); err != nil {
				return fmt.Errorf("users: add team member: %w", err)
			}
			if !exists {
				return ErrNotFound
			}
			return nil // a member already
		}
		return audit.Record(ctx, tx, actor, audit.Change{Action: "team.member_add", ObjectType: "team", ObjectID: fmt.Sprint(teamID),
			Summary: map[string]any{"user_id": userID}})
	})
}

// RemoveTeamMember takes a user out of a team (not a member: no change).
func (s *Service) RemoveTeamMember(ctx context.Context, actor audit.Actor, teamID, userID int64) error {
	return pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM teams WHERE id = $1)`, teamID).Scan(&exists); err != nil {
			return fmt.Errorf("users: remove team member: %w", err)
		}
		if !exists {
			return ErrNotFound
		}
		tag, err := tx.Exec(ctx, `DELETE FROM team_members WHERE team_id = $1 AND user_id = $2`, teamID, userID)
		if err != nil {
			return fmt.Errorf("users: remove team member: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return nil
		}
		return audit.Record(ctx, tx, actor, audit.Change{Action: "team.member_remove", ObjectType: "team", ObjectID: fmt.Sprint(teamID),
			Summary: map[string]any{"user_id": userID}})
	})
}

// TeamsOf returns the teams a user is in.
func (s *Service) TeamsOf(ctx context.Context, userID int64) ([]Team, error) {
	rows, err := s.db.Query(ctx, `SELECT `+teamColumns+` FROM teams t
		WHERE EXISTS (SELECT 1 FROM team_members m WHERE m.team_id = t.id AND m.user_id = $1)
		ORDER BY lower(t.name)`, userID)
	if err != nil {
		return nil, fmt.Errorf("users: teams of %d: %w", userID, err)
	}
	defer rows.Close()
	teams := []Team{}
	for rows.Next() {
		t, err := scanTeam(rows)
		if err != nil {
			return nil, fmt.Errorf("users: unable to fetch team: %w", err)
		}
		teams = append(teams, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("users: teams of %d: %w", userID, err)
	}
	return teams, nil
}
