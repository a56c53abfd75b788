package livetest

import (
	"slices"
	"testing"
	"time"
)

// ReportWorst reports the worst client request of the worst run and of
// the median run: one unlucky run should not hide the typical one.
func ReportWorst(b *testing.B, worsts []time.Duration) {
	slices.Sort(worsts)
	b.ReportMetric(float64(worsts[len(worsts)-1].Milliseconds()), "ms-worst-request-max")
	b.ReportMetric(float64(worsts[len(worsts)/2].Milliseconds()), "ms-worst-request-median")
}
