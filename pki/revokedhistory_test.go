package pki

import (
	"strings"
	"testing"
)

// revoked.json reads in both forms: the object with crlNumber, and the
// bare list written before the CRL number was kept.
func TestParseRevokedHistoryBothForms(t *testing.T) {
	const entry = `{"name": "a", "serial": "ab12", "reason": "superseded", "revokedAt": "2026-01-02T03:04:05Z"}`
	for _, c := range []struct {
		name, data string
		number     string // "" for none
		entries    int
	}{
		{"object", `{"crlNumber": 12345678901234567890123, "revoked": [` + entry + `]}`, "12345678901234567890123", 1},
		{"object without number", `{"revoked": [` + entry + `]}`, "", 1},
		{"bare list", "[" + entry + "]\n", "", 1},
		{"null list", "null\n", "", 0},
		{"empty", " \n", "", 0},
	} {
		h, err := ParseRevokedHistory([]byte(c.data))
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if len(h.Revoked) != c.entries {
			t.Errorf("%s: %d entries, want %d", c.name, len(h.Revoked), c.entries)
		}
		if got := h.CRLNumber; (c.number == "") != (got == nil) || (got != nil && got.String() != c.number) {
			t.Errorf("%s: crlNumber %v, want %q", c.name, got, c.number)
		}
	}
	for _, c := range []struct{ data, want string }{
		{`{"crlNumber": -1, "revoked": []}`, "crlNumber -1 is negative"},
		{`{"crlNumber": "7", "revoked": []}`, `crlNumber "7" is not an integer`},
		{`{"crlNumber": 1.5, "revoked": []}`, "crlNumber 1.5 is not an integer"},
		{`{"revoked": [{"serial": "xyz"}]}`, `entry 1: serial "xyz" is not hexadecimal`},
		{`[{"serial": "xyz"}]`, `entry 1: serial "xyz" is not hexadecimal`},
		{`not json`, "invalid character"},
	} {
		if _, err := ParseRevokedHistory([]byte(c.data)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", c.data, err, c.want)
		}
	}
}
