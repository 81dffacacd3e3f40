package config

import (
	"fmt"
	"time"

	"github.com/robfig/cron/v3"
)

// dstRuns reports the first daylight-saving change of zone within a year
// of from at whose shifted hour sched fires: the CronJob controller
// (Kubernetes' cronjob controller, which reads wall-clock times in the
// CronJob's timeZone) skips a run whose time does not exist the night the
// clocks go forward, and starts it twice the night they go back. window is
// the wall-clock hour affected, for example "02:00-03:00".
func dstRuns(sched cron.Schedule, zone *time.Location, from time.Time) (day time.Time, window string, forward, found bool) {
	spec, ok := sched.(*cron.SpecSchedule)
	if !ok {
		return time.Time{}, "", false, false
	}
	start := time.Date(from.Year(), from.Month(), from.Day(), 0, 0, 0, 0, zone)
	for d := 0; d < 366; d++ {
		midnight := start.AddDate(0, 0, d)
		next := start.AddDate(0, 0, d+1)
		_, before := midnight.Zone()
		_, after := next.Zone()
		if before == after {
			continue
		}
		// The instant of the change, to the minute.
		lo, hi := midnight, next
		for hi.Sub(lo) > time.Minute {
			mid := lo.Add(hi.Sub(lo) / 2)
			if _, off := mid.Zone(); off == before {
				lo = mid
			} else {
				hi = mid
			}
		}
		change := hi.Truncate(time.Minute)
		// Wall-clock times on either side of the change: [02:00, 03:00) both
		// ways in Europe, skipped going forward, repeated going back.
		oldWall := change.Add(time.Duration(before) * time.Second).UTC()
		newWall := change.Add(time.Duration(after) * time.Second).UTC()
		first, last := oldWall, newWall
		if newWall.Before(oldWall) {
			first, last = newWall, oldWall
		}
		for t := first; t.Before(last); t = t.Add(time.Minute) {
			if fires(spec, t) {
				return midnight, fmt.Sprintf("%s-%s", first.Format("15:04"), last.Format("15:04")), after > before, true
			}
		}
	}
	return time.Time{}, "", false, false
}

// fires reports whether spec matches the wall-clock time t (read in UTC as
// a plain date and time), with cron's rule for day of month and day of week:
// either, unless one is a wildcard.
func fires(spec *cron.SpecSchedule, t time.Time) bool {
	bit := func(field uint64, v int) bool { return field&(1<<uint(v)) != 0 }
	if !bit(spec.Minute, t.Minute()) || !bit(spec.Hour, t.Hour()) || !bit(spec.Month, int(t.Month())) {
		return false
	}
	const star = 1 << 63
	dom, dow := bit(spec.Dom, t.Day()), bit(spec.Dow, int(t.Weekday()))
	if spec.Dom&star != 0 || spec.Dow&star != 0 {
		return dom && dow
	}
	return dom || dow
}
