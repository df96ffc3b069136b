package postgres

import (
	"fmt"

	"github.com/lib/pq"

	"github.com/corp/herald/store"
)

// targetArgs are a publish's targets as query arguments: never NULL arrays
// (an empty array matches nothing), emails normalized.
type targetArgs struct {
	all    bool
	ids    pq.Int64Array
	emails pq.StringArray
	roles  pq.StringArray
}

func targetsOf(t store.Targets) targetArgs {
	ta := targetArgs{
		all:    t.All,
		ids:    pq.Int64Array(append([]int64{}, t.Employees...)),
		emails: make(pq.StringArray, len(t.Emails)),
		roles:  pq.StringArray(append([]string{}, t.Roles...)),
	}
	for i, e := range t.Emails {
		ta.emails[i] = store.NormalizeLogin(e)
	}
	return ta
}

// String describes the targets for error messages.
func (ta targetArgs) String() string {
	if ta.all {
		return "everyone"
	}
	return fmt.Sprintf("%d employees, %d emails, %d roles", len(ta.ids), len(ta.emails), len(ta.roles))
}

// unknown lists the employee IDs and emails of t that are not among the
// known ones (those that matched an employee).
func (ta targetArgs) unknown(t store.Targets, knownIDs []int64, knownEmails []string) store.Unknown {
	ids := make(map[int64]bool, len(knownIDs))
	for _, id := range knownIDs {
		ids[id] = true
	}
	emails := make(map[string]bool, len(knownEmails))
	for _, e := range knownEmails {
		emails[e] = true
	}
	return store.Unknown{Employees: store.MissingIDs(t.Employees, ids), Emails: store.MissingEmails(t.Emails, emails)}
}
