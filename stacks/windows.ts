import { badInput, refused } from "../lib/errors";
import { formatDuration } from "../lib/wait";

/**
 * Maintenance windows (`--window "Sat 02:00-06:00 Europe/Berlin"`): when a run may disrupt a
 * deployment. Pure: parsing, and where an instant falls; the clock is the caller's.
 *
 * A window opens on each of its days at its start, wall-clock time in its IANA time zone, and
 * closes at its end the same day, or the next day when the end is not after the start
 * (`Fri 22:00-02:00`). Daylight saving time is the zone's own (Intl): a wall-clock time that does
 * not exist (the hour skipped in spring) is the instant just after the gap; one that exists twice
 * (the hour repeated in autumn) is the earlier one. Several windows that touch or overlap are one.
 */
export interface MaintenanceWindow {
  /** As given. */
  spec: string;
  /** The days it opens on, in its time zone (0 = Sunday). */
  days: ReadonlySet<number>;
  /** Minutes after local midnight (0..1439). */
  startMinute: number;
  /** Minutes after local midnight (1..1440); not after `startMinute`: the next day. */
  endMinute: number;
  /** IANA name, e.g. Europe/Berlin. */
  timeZone: string;
}

/** One opening of a window (or of windows that touch), as instants. */
export interface WindowOccurrence {
  startMs: number;
  endMs: number;
  /** The window(s) it is made of, as given. */
  specs: string[];
  timeZone: string;
}

const DAY_NAMES = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
const FULL_DAY_NAMES = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"];
const DAY_MS = 86_400_000;
const FORMAT_HINT = 'write it as "<days> <HH:MM>-<HH:MM> <time zone>", e.g. "Sat 02:00-06:00 Europe/Berlin", "Mon-Fri 22:00-02:00 UTC" or "daily 01:00-03:00 America/New_York"';

function day(name: string, spec: string): number {
  const n = name.toLowerCase();
  const i = DAY_NAMES.indexOf(n) >= 0 ? DAY_NAMES.indexOf(n) : FULL_DAY_NAMES.indexOf(n);
  if (i < 0) throw badInput(`read the maintenance window ${JSON.stringify(spec)}`, `${JSON.stringify(name)} is not a day of the week`, `days are Mon, Tue, Wed, Thu, Fri, Sat, Sun (or ranges like Mon-Fri, lists like Sat,Sun, or daily); ${FORMAT_HINT}`);
  return i;
}

function parseDays(text: string, spec: string): Set<number> {
  if (/^(daily|\*)$/i.test(text)) return new Set([0, 1, 2, 3, 4, 5, 6]);
  const days = new Set<number>();
  for (const item of text.split(",")) {
    const [from, to, ...rest] = item.split("-");
    if (!from || rest.length > 0) throw badInput(`read the maintenance window ${JSON.stringify(spec)}`, `${JSON.stringify(item)} is not a day or a range of days`, FORMAT_HINT);
    const a = day(from, spec);
    const b = to === undefined ? a : day(to, spec);
    // a range may wrap the week: Fri-Mon is Fri, Sat, Sun, Mon
    for (let d = a; ; d = (d + 1) % 7) {
      days.add(d);
      if (d === b) break;
    }
  }
  return days;
}

function minuteOf(hh: string, mm: string, end: boolean): number | undefined {
  const h = Number(hh);
  const m = Number(mm);
  if (m > 59) return undefined;
  if (h === 24 && m === 0 && end) return 1440;
  return h > 23 ? undefined : h * 60 + m;
}

/** Whether Intl knows the zone, by its canonical name (undefined: unknown). */
function canonicalZone(name: string): string | undefined {
  try {
    return new Intl.DateTimeFormat("en-US", { timeZone: name }).resolvedOptions().timeZone;
  } catch {
    return undefined;
  }
}

/** Parses one `--window` spec; a bad one is bad input (exit 2) saying what is wrong with it. */
export function parseWindow(spec: string): MaintenanceWindow {
  const what = `read the maintenance window ${JSON.stringify(spec)}`;
  const parts = spec.trim().split(/\s+/).filter(Boolean);
  // the days may be left out: every day
  if (parts.length === 2 && /^\d/.test(parts[0]!)) parts.unshift("daily");
  if (parts.length !== 3) {
    throw badInput(what, parts.length < 3 ? "it needs days, a time range and a time zone" : "it has more parts than days, a time range and a time zone", FORMAT_HINT);
  }
  const [daysText, range, zone] = parts as [string, string, string];
  const days = parseDays(daysText, spec);
  const times = /^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$/.exec(range);
  if (!times) throw badInput(what, `${JSON.stringify(range)} is not a time range HH:MM-HH:MM`, FORMAT_HINT);
  const startMinute = minuteOf(times[1]!, times[2]!, false);
  const endMinute = minuteOf(times[3]!, times[4]!, true);
  if (startMinute === undefined || endMinute === undefined) throw badInput(what, `${JSON.stringify(range)} has a time that is not on a 24-hour clock`, "hours 00-23 (24:00 only as an end), minutes 00-59");
  if (startMinute === endMinute) throw badInput(what, `${JSON.stringify(range)} starts and ends at the same time`, "for a whole day write 00:00-24:00");
  const timeZone = canonicalZone(zone);
  if (!timeZone) throw badInput(what, `${JSON.stringify(zone)} is not a time zone this Node.js knows`, "use an IANA name such as Europe/Berlin, America/New_York or UTC");
  return { spec, days, startMinute, endMinute: endMinute === 0 ? 1440 : endMinute, timeZone };
}

export function parseWindows(specs: readonly string[]): MaintenanceWindow[] {
  return specs.map(parseWindow);
}

const formatters = new Map<string, Intl.DateTimeFormat>();
function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", { timeZone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" });
    formatters.set(timeZone, f);
  }
  return f;
}

/** The wall clock in `timeZone` at an instant, as if it were UTC (ms). */
function wallClock(ms: number, timeZone: string): number {
  const parts: Record<string, number> = {};
  for (const p of formatter(timeZone).formatToParts(new Date(ms))) if (p.type !== "literal") parts[p.type] = Number(p.value);
  return Date.UTC(parts.year!, parts.month! - 1, parts.day!, parts.hour! % 24, parts.minute!, parts.second!);
}

/** The zone's offset from UTC at an instant (ms; Berlin in summer: +2 h). */
export function offsetAt(ms: number, timeZone: string): number {
  const whole = Math.floor(ms / 1000) * 1000;
  return wallClock(whole, timeZone) - whole;
}

/**
 * The instant a wall-clock time (given as if UTC) happens in a zone: the earlier of two in an
 * autumn overlap, the one just after the gap for a time skipped in spring.
 */
export function instantOf(wall: number, timeZone: string): number {
  const before = offsetAt(wall - DAY_MS, timeZone);
  const after = offsetAt(wall + DAY_MS, timeZone);
  const candidates = [...new Set([before, after])].map((o) => wall - o).filter((t) => wallClock(t, timeZone) === wall);
  if (candidates.length > 0) return Math.min(...candidates);
  return wall - before; // in the gap: as far past its start as the time asked for
}

/** The local calendar day (as a UTC midnight) of an instant in a zone. */
function localDay(ms: number, timeZone: string): number {
  const wall = wallClock(ms, timeZone);
  return wall - (((wall % DAY_MS) + DAY_MS) % DAY_MS);
}

/** The openings of one window that start on local days from `fromDay` to `toDay` (UTC midnights). */
function openings(w: MaintenanceWindow, fromDay: number, toDay: number): WindowOccurrence[] {
  const found: WindowOccurrence[] = [];
  for (let d = fromDay; d <= toDay; d += DAY_MS) {
    if (!w.days.has(new Date(d).getUTCDay())) continue;
    const startMs = instantOf(d + w.startMinute * 60_000, w.timeZone);
    const endDay = w.endMinute <= w.startMinute ? d + DAY_MS : d;
    const endMs = instantOf(endDay + w.endMinute * 60_000, w.timeZone);
    if (endMs > startMs) found.push({ startMs, endMs, specs: [w.spec], timeZone: w.timeZone });
  }
  return found;
}

function openingsAround(windows: readonly MaintenanceWindow[], fromMs: number, toMs: number): WindowOccurrence[] {
  return windows
    .flatMap((w) => openings(w, localDay(fromMs, w.timeZone) - 2 * DAY_MS, localDay(toMs, w.timeZone) + DAY_MS))
    .filter((o) => o.endMs > fromMs && o.startMs <= toMs)
    .sort((a, b) => a.startMs - b.startMs || b.endMs - a.endMs);
}

/** The window open at `nowMs`, with windows that touch or overlap it joined (undefined: none is). */
export function windowAt(windows: readonly MaintenanceWindow[], nowMs: number): WindowOccurrence | undefined {
  const around = openingsAround(windows, nowMs - 3 * DAY_MS, nowMs + 9 * DAY_MS);
  const open = around.filter((o) => o.startMs <= nowMs && nowMs < o.endMs);
  if (open.length === 0) return undefined;
  const joined: WindowOccurrence = { startMs: Math.min(...open.map((o) => o.startMs)), endMs: Math.max(...open.map((o) => o.endMs)), specs: [...new Set(open.flatMap((o) => o.specs))], timeZone: open[0]!.timeZone };
  for (let grew = true; grew; ) {
    grew = false;
    for (const o of around) {
      if (o.startMs <= joined.endMs && o.endMs > joined.endMs) {
        joined.endMs = o.endMs;
        joined.specs = [...new Set([...joined.specs, ...o.specs])];
        grew = true;
      }
    }
  }
  return joined;
}

/** The next window to open after `nowMs` (within the next 8 days: every window opens weekly). */
export function nextWindow(windows: readonly MaintenanceWindow[], nowMs: number): WindowOccurrence | undefined {
  return openingsAround(windows, nowMs, nowMs + 8 * DAY_MS).find((o) => o.startMs > nowMs);
}

/** "Sat 2026-12-12 06:00 Europe/Berlin" */
export function formatInstant(ms: number, timeZone: string): string {
  const wall = new Date(wallClock(ms, timeZone));
  const name = DAY_NAMES[wall.getUTCDay()]!;
  const day = name[0]!.toUpperCase() + name.slice(1);
  return `${day} ${wall.toISOString().slice(0, 10)} ${wall.toISOString().slice(11, 16)} ${timeZone}`;
}

/** A span for people: h:mm:ss, or days, hours and minutes beyond a day ("4d 12h 46m"). */
export function formatSpan(ms: number): string {
  if (ms < DAY_MS) return formatDuration(ms);
  const minutes = Math.floor(ms / 60_000);
  return `${Math.floor(minutes / 1440)}d ${Math.floor((minutes % 1440) / 60)}h ${String(minutes % 60).padStart(2, "0")}m`;
}

/** How long the run is expected to disrupt, and where that figure comes from (for people). */
export interface ExpectedDuration {
  ms: number;
  source: string;
  /** The journaled run the figure comes from: its steps and how long each took (a plan draws them). */
  timeline?: { runId: string; steps: Array<{ step: string; status: string; durationMs: number }> };
}

/**
 * The window check before a run disrupts anything: refused (exit 3) outside every window, or when
 * the expected duration would overrun the end of the window it is in. Returns that window.
 */
export function checkWindow(windows: readonly MaintenanceWindow[], nowMs: number, expected: ExpectedDuration | undefined): WindowOccurrence {
  const specs = windows.map((w) => JSON.stringify(w.spec)).join(", ");
  const zone = windows[0]!.timeZone;
  const next = nextWindow(windows, nowMs);
  const nextText = next ? `the next window opens ${formatInstant(next.startMs, next.timeZone)}, in ${formatSpan(next.startMs - nowMs)}` : "no window opens in the next week";
  const open = windowAt(windows, nowMs);
  if (!open) {
    throw refused(
      "start the upgrade in a maintenance window",
      `it is ${formatInstant(nowMs, zone)}, outside the maintenance window${windows.length > 1 ? "s" : ""} ${specs}`,
      `${nextText}; run it then (nothing was changed)`,
    );
  }
  if (expected && nowMs + expected.ms > open.endMs) {
    throw refused(
      "start the upgrade in a maintenance window",
      `the run is expected to take ${formatDuration(expected.ms)} (${expected.source}), but the window ${open.specs.map((s) => JSON.stringify(s)).join(" + ")} ends ${formatInstant(open.endMs, open.timeZone)}, in ${formatDuration(open.endMs - nowMs)}`,
      `${nextText}; start it then${expected.source === "--expected-duration" ? "" : ", or give --expected-duration if the journal's earlier runs do not represent this one"} (nothing was changed)`,
    );
  }
  return open;
}
