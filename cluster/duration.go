package cluster

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// FormatDuration prints whole days as "365d" and anything else as Go does.
func FormatDuration(d time.Duration) string {
	if d >= 24*time.Hour && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

var (
	// daysOrYears is the whole-number form ("90d", "10y"), nothing else.
	daysOrYears = regexp.MustCompile(`^([0-9]+)([dy])$`)
	// goDuration is time.ParseDuration's grammar without a sign: a sign
	// only ever means a mistake here.
	goDuration = regexp.MustCompile(`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`)
)

// MaxDuration is the longest duration etcdpki accepts: what time.Duration
// holds, about 292 years. Longer ones used to wrap round silently.
const MaxDuration = time.Duration(math.MaxInt64)

// ParseDuration accepts Go durations ("8760h", "1h30m") plus whole days
// ("90d") and years ("10y", 365 days), which is how people think about
// certificates. Anything else, a sign, a fraction of a day, or a value
// that does not fit in a time.Duration (about 292 years) is an error.
func ParseDuration(v string) (time.Duration, error) {
	bad := fmt.Errorf("%q is not a duration (examples: 8760h, 90d, 10y)", v)
	if strings.HasPrefix(v, "-") {
		return 0, fmt.Errorf("%q must be positive", v)
	}
	var d time.Duration
	if m := daysOrYears.FindStringSubmatch(v); m != nil {
		unit := 24 * time.Hour
		if m[2] == "y" {
			unit *= 365
		}
		n, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil || n > int64(MaxDuration/unit) {
			return 0, fmt.Errorf("%q is too long (at most %dy)", v, MaxDuration/(365*24*time.Hour))
		}
		d = time.Duration(n) * unit
	} else {
		if !goDuration.MatchString(v) {
			return 0, bad
		}
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			// The grammar matched, so only an overflow is left.
			return 0, fmt.Errorf("%q is too long (at most %dy)", v, MaxDuration/(365*24*time.Hour))
		}
	}
	if d <= 0 {
		return 0, fmt.Errorf("%q must be positive", v)
	}
	return d, nil
}
