package conversations

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/herald-im/herald/audit"
	"github.com/herald-im/herald/invalid"
)

// PickUp assigns an unassigned conversation to the agent userID. Of two
// agents picking up at the same moment exactly one wins; the other gets
// ErrConflict. Picking up one's own conversation again is no change.
func (s *Service) PickUp(ctx context.Context, actor audit.Actor, conversationID, userID int64) (*Conversation, error) {
	var conv *Conversation
	changed := false
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		if conv, err = getConversation(ctx, tx, conversationID, "FOR UPDATE OF c"); err != nil {
			return err
		}
		if conv.AssigneeID != nil {
			if *conv.AssigneeID == userID {
				return nil
			}
			return fmt.Errorf("%w: %s has it", ErrConflict, conv.AssigneeName)
		}
		if err := checkAssignee(ctx, tx, userID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE conversations SET assignee_id = $2, updated_at = now() WHERE id = $1`, conversationID, userID); err != nil {
			return fmt.Errorf("conversations: pick up: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE users SET last_assigned_at = now() WHERE id = $1`, userID); err != nil {
			return fmt.Errorf("conversations: pick up: %w", err)
		}
		if conv, err = getConversation(ctx, tx, conversationID, ""); err != nil {
			return err
		}
		changed = true
		return recordEvent(ctx, tx, actor, "conversation.assign", conv, map[string]any{"assignee_id": conv.AssigneeID, "reason": "picked_up"})
	})
	if err != nil {
		return nil, err
	}
	if changed {
		s.committed()
	}
	return conv, nil
}

// checkAssignee checks that a user can hold conversations: an active agent
// or admin (marketers do not read conversations).
func checkAssignee(ctx context.Context, tx pgx.Tx, userID int64) error {
	var ok bool
	err := tx.QueryRow(ctx, `SELECT state = 'active' AND role IN ('agent', 'admin') FROM users WHERE id = $1`, userID).Scan(&ok)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && !ok) {
		return invalid.Field("assignee_id", "must be an active agent or admin")
	}
	if err != nil {
		return fmt.Errorf("conversations: check assignee: %w", err)
	}
	return nil
}

// Assignment changes who holds a conversation. A nil field is left alone;
// 0 clears it.
type Assignment struct {
	AssigneeID *int64 `json:"assignee_id"`
	TeamID     *int64 `json:"team_id"`
}

// Assign reassigns a conversation to an agent or a team (or neither). A
// conversation handed to an auto-assigning team without an agent goes to
// the team's next available agent.
func (s *Service) Assign(ctx context.Context, actor audit.Actor, conversationID int64, a Assignment) (*Conversation, error) {
	if a.AssigneeID == nil && a.TeamID == nil {
		return nil, invalid.Field("assignee_id", "name an assignee_id or a team_id (0 clears it)")
	}
	var conv *Conversation
	var freed *int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		if conv, err = getConversation(ctx, tx, conversationID, "FOR UPDATE OF c"); err != nil {
			return err
		}
		assignee, team := conv.AssigneeID, conv.TeamID
		if a.AssigneeID != nil {
			assignee = nil
			if *a.AssigneeID != 0 {
				if err := checkAssignee(ctx, tx, *a.AssigneeID); err != nil {
					return err
				}
				assignee = a.AssigneeID
			}
		}
		if a.TeamID != nil {
			team = nil
			if *a.TeamID != 0 {
				var exists bool
				if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM teams WHERE id = $1)`, *a.TeamID).Scan(&exists); err != nil {
					return fmt.Errorf("conversations: check team: %w", err)
				}
				if !exists {
					return invalid.Field("team_id", "no such team")
				}
				team = a.TeamID
			}
		}
		if conv.AssigneeID != nil && (assignee == nil || *assignee != *conv.AssigneeID) {
			freed = conv.AssigneeID
		}
		if _, err := tx.Exec(ctx, `UPDATE conversations SET assignee_id = $2, team_id = $3, updated_at = now() WHERE id = $1`,
			conversationID, assignee, team); err != nil {
			return fmt.Errorf("conversations: assign: %w", err)
		}
		if assignee != nil {
			if _, err := tx.Exec(ctx, `UPDATE users SET last_assigned_at = now() WHERE id = $1`, *assignee); err != nil {
				return fmt.Errorf("conversations: assign: %w", err)
			}
		}
		if conv, err = getConversation(ctx, tx, conversationID, ""); err != nil {
			return err
		}
		if err := recordEvent(ctx, tx, actor, "conversation.assign", conv, map[string]any{"assignee_id": conv.AssigneeID,
			"team_id": conv.TeamID, "reason": "assigned"}); err != nil {
			return err
		}
		if conv.AssigneeID == nil && conv.TeamID != nil && conv.Status == StatusOpen {
			if _, err := autoAssign(ctx, tx, conv.ID, *conv.TeamID); err != nil {
				return err
			}
			conv, err = getConversation(ctx, tx, conversationID, "")
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	s.committed()
	if freed != nil {
		s.drainFor(ctx, *freed)
	}
	return conv, nil
}

// autoAssign hands a waiting conversation of team to the team's next
// agent, round robin over available agents below their capacity, in tx.
// It reports whether one was found. Agents being handed a conversation by
// another transaction right now are skipped, not waited for, so that
// inbound messages never queue behind each other here.
func autoAssign(ctx context.Context, tx pgx.Tx, conversationID, teamID int64) (bool, error) {
	var auto bool
	err := tx.QueryRow(ctx, `SELECT auto_assign FROM teams WHERE id = $1`, teamID).Scan(&auto)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && !auto) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("conversations: auto-assign: %w", err)
	}
	const q = `
		SELECT u.id FROM team_members tm JOIN users u ON u.id = tm.user_id
		WHERE tm.team_id = $1 AND u.available AND u.state = 'active' AND u.role IN ('agent', 'admin')
		  AND (SELECT count(*) FROM conversations c
		       WHERE c.assignee_id = u.id AND c.status IN ('open', 'pending')) < u.capacity
		ORDER BY u.last_assigned_at NULLS FIRST, u.id
		LIMIT 1
		FOR UPDATE OF u SKIP LOCKED`
	var agent int64
	err = tx.QueryRow(ctx, q, teamID).Scan(&agent)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("conversations: auto-assign: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE users SET last_assigned_at = clock_timestamp() WHERE id = $1`, agent); err != nil {
		return false, fmt.Errorf("conversations: auto-assign: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE conversations SET assignee_id = $2, updated_at = now() WHERE id = $1`, conversationID, agent); err != nil {
		return false, fmt.Errorf("conversations: auto-assign: %w", err)
	}
	conv, err := getConversation(ctx, tx, conversationID, "")
	if err != nil {
		return false, err
	}
	return true, recordEvent(ctx, tx, audit.System("auto-assignment"), "conversation.assign", conv,
		map[string]any{"assignee_id": agent, "reason": "auto"})
}

// drain assigns a team's waiting conversations, oldest first, until no
// agent has room. It returns how many it assigned.
func (s *Service) drain(ctx context.Context, teamID int64) (int, error) {
	n := 0
	for {
		assigned := false
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			var id int64
			err := tx.QueryRow(ctx, `SELECT id FROM conversations
				WHERE team_id = $1 AND assignee_id IS NULL AND status = 'open'
				ORDER BY coalesce(waiting_since, 'infinity'), id LIMIT 1 FOR UPDATE SKIP LOCKED`, teamID).Scan(&id)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("conversations: drain: %w", err)
			}
			assigned, err = autoAssign(ctx, tx, id, teamID)
			return err
		})
		if err != nil || !assigned {
			if n > 0 {
				s.committed()
			}
			return n, err
		}
		n++
	}
}

// drainFor drains the queues of every team of user, after their capacity
// freed or they became available. Errors are logged: the periodic drain
// catches up.
func (s *Service) drainFor(ctx context.Context, userID int64) {
	rows, err := s.pool.Query(ctx, `SELECT t.id FROM teams t JOIN team_members tm ON tm.team_id = t.id
		WHERE tm.user_id = $1 AND t.auto_assign ORDER BY t.id`, userID)
	var teams []int64
	if err == nil {
		teams, err = pgx.CollectRows(rows, pgx.RowTo[int64])
	}
	for _, t := range teams {
		if err != nil {
			break
		}
		_, err = s.drain(ctx, t)
	}
	if err != nil {
		s.logger.Error("drain waiting conversations", "user_id", userID, "error", err)
		s.metrics.errors.WithLabelValues("drain").Inc()
	}
}

// Availability is an agent's own setting.
type Availability struct {
	UserID    int64  `json:"user_id"`
	Name      string `json:"name"`
	Available bool   `json:"available"`
	Capacity  int    `json:"capacity"`
	// Open is how many open or pending conversations the agent holds.
	Open int `json:"open"`
}

// SetAvailability sets whether an agent takes new conversations (and how
// many at once, if capacity is not nil). Becoming available drains the
// waiting queues of their teams.
func (s *Service) SetAvailability(ctx context.Context, actor audit.Actor, userID int64, available bool, capacity *int) (*Availability, error) {
	if capacity != nil && (*capacity < 0 || *capacity > 1000) {
		return nil, invalid.Field("capacity", "must be between 0 and 1000")
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE users SET available = $2, capacity = coalesce($3, capacity), updated_at = now()
			WHERE id = $1 AND role IN ('agent', 'admin')`, userID, available, capacity)
		if err != nil {
			return fmt.Errorf("conversations: set availability: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return ErrForbidden
		}
		summary := map[string]any{"available": available}
		if capacity != nil {
			summary["capacity"] = *capacity
		}
		return audit.Record(ctx, tx, actor, audit.Change{Action: "agent.availability", ObjectType: "user",
			ObjectID: fmt.Sprint(userID), Summary: summary})
	})
	if err != nil {
		return nil, err
	}
	s.committed()
	if available {
		s.drainFor(ctx, userID)
	}
	all, err := s.Agents(ctx, userID)
	if err != nil || len(all) == 0 {
		return nil, errors.Join(err, ErrNotFound)
	}
	return &all[0], nil
}

// Agents returns the agents and admins with their availability and load
// (only userID's when userID is not 0).
func (s *Service) Agents(ctx context.Context, userID int64) ([]Availability, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT u.id, u.name, u.available, u.capacity,
			(SELECT count(*) FROM conversations c WHERE c.assignee_id = u.id AND c.status IN ('open', 'pending'))
		FROM users u
		WHERE u.role IN ('agent', 'admin') AND u.state = 'active' AND ($1::bigint = 0 OR u.id = $1::bigint)
		ORDER BY u.name, u.id`, userID)
	if err != nil {
		return nil, fmt.Errorf("conversations: agents: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Availability])
	if err != nil {
		return nil, fmt.Errorf("conversations: unable to fetch agent: %w", err)
	}
	return out, nil
}

// SetTeamAutoAssign turns a team's auto-assignment on or off; on drains
// its waiting queue.
func (s *Service) SetTeamAutoAssign(ctx context.Context, actor audit.Actor, teamID int64, on bool) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE teams SET auto_assign = $2, updated_at = now() WHERE id = $1`, teamID, on)
		if err != nil {
			return fmt.Errorf("conversations: team auto-assign: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		return audit.Record(ctx, tx, actor, audit.Change{Action: "team.auto_assign", ObjectType: "team",
			ObjectID: fmt.Sprint(teamID), Summary: map[string]any{"auto_assign": on}})
	})
	if err != nil {
		return err
	}
	if on {
		_, err = s.drain(ctx, teamID)
	}
	return err
}

// SetAppInbox sets the team an app's new conversations land in (0: none).
func (s *Service) SetAppInbox(ctx context.Context, actor audit.Actor, appID, teamID int64) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var team *int64
		if teamID != 0 {
			team = &teamID
			var exists bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM teams WHERE id = $1)`, teamID).Scan(&exists); err != nil {
				return fmt.Errorf("conversations: app inbox: %w", err)
			}
			if !exists {
				return invalid.Field("team_id", "no such team")
			}
		}
		tag, err := tx.Exec(ctx, `UPDATE apps SET inbox_team_id = $2, updated_at = now() WHERE id = $1`, appID, team)
		if err != nil {
			return fmt.Errorf("conversations: app inbox: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		return audit.Record(ctx, tx, actor, audit.Change{Action: "app.inbox", ObjectType: "app",
			ObjectID: fmt.Sprint(appID), Summary: map[string]any{"team_id": team}})
	})
}

// DrainArgs assigns every auto-assigning team's waiting conversations that
// found no agent when they arrived (all busy at that moment).
type DrainArgs struct{}

// Kind is the job kind.
func (DrainArgs) Kind() string { return "conversations.drain" }

// InsertOpts makes the drain unique while one is waiting.
func (DrainArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueConversations, UniqueOpts: river.UniqueOpts{ByPeriod: 15 * time.Second}}
}

// DrainWorker runs DrainArgs.
type DrainWorker struct {
	river.WorkerDefaults[DrainArgs]
	Service *Service
}

// Work drains every auto-assigning team.
func (w *DrainWorker) Work(ctx context.Context, _ *river.Job[DrainArgs]) error {
	rows, err := w.Service.pool.Query(ctx, `SELECT id FROM teams WHERE auto_assign ORDER BY id`)
	if err != nil {
		return fmt.Errorf("conversations: drain teams: %w", err)
	}
	teams, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return fmt.Errorf("conversations: drain teams: %w", err)
	}
	for _, t := range teams {
		if _, err := w.Service.drain(ctx, t); err != nil {
			return err
		}
	}
	return nil
}
