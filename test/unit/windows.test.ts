import { ExitCode, UpgradeError } from "../../lib/errors";
import { checkWindow, formatInstant, instantOf, nextWindow, offsetAt, parseWindow, parseWindows, windowAt } from "../../stacks/windows";

const at = (iso: string) => Date.parse(iso);
const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
/** The window open at an instant, as ISO instants (undefined: outside). */
function openAt(specs: string[], instant: string) {
  const w = windowAt(parseWindows(specs), at(instant));
  return w && { start: iso(w.startMs), end: iso(w.endMs) };
}
function thrown(f: () => unknown): UpgradeError {
  try {
    f();
  } catch (err) {
    if (err instanceof UpgradeError) return err;
    throw err;
  }
  throw new Error("did not throw");
}

describe("parsing", () => {
  test("days, a time range and an IANA zone", () => {
    const w = parseWindow("Sat 02:00-06:00 Europe/Berlin");
    expect([...w.days]).toEqual([6]);
    expect([w.startMinute, w.endMinute, w.timeZone, w.spec]).toEqual([120, 360, "Europe/Berlin", "Sat 02:00-06:00 Europe/Berlin"]);
  });

  test("day ranges (wrapping the week), lists, full names, any case, daily, and no days at all", () => {
    const days = (spec: string) => [...parseWindow(spec).days].sort();
    expect(days("Mon-Fri 22:00-02:00 UTC")).toEqual([1, 2, 3, 4, 5]);
    expect(days("Fri-Mon 22:00-02:00 UTC")).toEqual([0, 1, 5, 6]);
    expect(days("sat,SUN 01:00-03:00 UTC")).toEqual([0, 6]);
    expect(days("Saturday,Tue-Wed 01:00-03:00 UTC")).toEqual([2, 3, 6]);
    expect(days("daily 01:00-03:00 UTC")).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(days("01:00-03:00 UTC")).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(days("Sun-Sun 01:00-03:00 UTC")).toEqual([0]);
  });

  test("24:00 ends a day; an end of 00:00 is the next midnight; a zone alias is accepted", () => {
    expect(parseWindow("Sat 00:00-24:00 UTC")).toMatchObject({ startMinute: 0, endMinute: 1440 });
    expect(parseWindow("Sat 22:00-00:00 UTC")).toMatchObject({ startMinute: 1320, endMinute: 1440 });
    expect(parseWindow("Sat 2:05-6:00 utc").startMinute).toBe(125);
  });

  test.each([
    ["Sat 02:00-06:00", /needs days, a time range and a time zone/],
    ["", /needs days/],
    ["Sat 02:00-06:00 UTC tonight", /more parts/],
    ["Sad 02:00-06:00 UTC", /"Sad" is not a day of the week/],
    ["Mon-Fri-Sat 02:00-06:00 UTC", /"Mon-Fri-Sat" is not a day or a range/],
    ["Sat,,Sun 02:00-06:00 UTC", /"" is not a day or a range/],
    ["Sat 2-6 UTC", /"2-6" is not a time range HH:MM-HH:MM/],
    ["Sat 02:00-25:00 UTC", /not on a 24-hour clock/],
    ["Sat 24:00-02:00 UTC", /not on a 24-hour clock/],
    ["Sat 02:60-03:00 UTC", /not on a 24-hour clock/],
    ["Sat 02:00-02:00 UTC", /starts and ends at the same time/],
    ["Sat 02:00-06:00 Mars/Olympus_Mons", /"Mars\/Olympus_Mons" is not a time zone/],
    ["Sat 02:00-06:00 CEST+1", /is not a time zone/],
  ])("%j is bad input (exit 2) saying what, why and what to do", (spec, why) => {
    const err = thrown(() => parseWindow(spec));
    expect(err.exitCode).toBe(ExitCode.BadInput);
    expect(err.what).toBe(`read the maintenance window ${JSON.stringify(spec)}`);
    expect(err.why).toMatch(why);
    expect(err.hint).toBeTruthy();
  });
});

describe("time zones (Intl)", () => {
  test("offsets of Berlin in winter and summer, of Kolkata (+5:30), of UTC", () => {
    expect(offsetAt(at("2026-12-12T12:00:00Z"), "Europe/Berlin")).toBe(3_600_000);
    expect(offsetAt(at("2026-07-11T12:00:00Z"), "Europe/Berlin")).toBe(7_200_000);
    expect(offsetAt(at("2026-07-11T12:00:00Z"), "Asia/Kolkata")).toBe(5.5 * 3_600_000);
    expect(offsetAt(at("2026-07-11T12:00:00Z"), "UTC")).toBe(0);
  });

  test("a wall-clock time skipped in spring is the instant just after the gap; one repeated in autumn, the earlier", () => {
    // 2026-03-29: Berlin jumps from 02:00 CET to 03:00 CEST (01:00Z); 02:30 does not exist
    expect(iso(instantOf(at("2026-03-29T02:30:00Z"), "Europe/Berlin"))).toBe("2026-03-29T01:30:00.000Z"); // 03:30 CEST
    expect(iso(instantOf(at("2026-03-29T01:59:00Z"), "Europe/Berlin"))).toBe("2026-03-29T00:59:00.000Z");
    expect(iso(instantOf(at("2026-03-29T03:00:00Z"), "Europe/Berlin"))).toBe("2026-03-29T01:00:00.000Z");
    // 2026-10-25: Berlin goes back from 03:00 CEST to 02:00 CET (01:00Z); 02:30 happens twice
    expect(iso(instantOf(at("2026-10-25T02:30:00Z"), "Europe/Berlin"))).toBe("2026-10-25T00:30:00.000Z"); // 02:30 CEST
    expect(iso(instantOf(at("2026-10-25T03:00:00Z"), "Europe/Berlin"))).toBe("2026-10-25T02:00:00.000Z");
  });

  test("instants are shown in the window's zone, its wall clock and weekday", () => {
    expect(formatInstant(at("2026-12-12T05:00:00Z"), "Europe/Berlin")).toBe("Sat 2026-12-12 06:00 Europe/Berlin");
    expect(formatInstant(at("2026-12-12T23:30:00Z"), "Europe/Berlin")).toBe("Sun 2026-12-13 00:30 Europe/Berlin");
  });
});

describe("the window open at an instant", () => {
  const sat = ["Sat 02:00-06:00 Europe/Berlin"];

  test("inside from its start (inclusive) to its end (exclusive), in the zone's wall clock", () => {
    // winter: Berlin is UTC+1
    expect(openAt(sat, "2026-12-12T01:00:00Z")).toEqual({ start: "2026-12-12T01:00:00.000Z", end: "2026-12-12T05:00:00.000Z" });
    expect(openAt(sat, "2026-12-12T04:59:59.999Z")).toEqual({ start: "2026-12-12T01:00:00.000Z", end: "2026-12-12T05:00:00.000Z" });
    expect(openAt(sat, "2026-12-12T00:59:59.999Z")).toBeUndefined();
    expect(openAt(sat, "2026-12-12T05:00:00Z")).toBeUndefined();
    // the same wall-clock hours on another day are outside
    expect(openAt(sat, "2026-12-13T02:00:00Z")).toBeUndefined();
    expect(openAt(sat, "2026-12-11T02:00:00Z")).toBeUndefined();
    // summer: UTC+2
    expect(openAt(sat, "2026-07-11T00:30:00Z")).toEqual({ start: "2026-07-11T00:00:00.000Z", end: "2026-07-11T04:00:00.000Z" });
  });

  test("a window crossing midnight belongs to the day it opens, and is open after midnight", () => {
    const fri = ["Fri 22:00-02:00 Europe/Berlin"];
    // Fri 2026-12-11 22:00 CET = 21:00Z, to Sat 02:00 CET = 01:00Z
    const open = { start: "2026-12-11T21:00:00.000Z", end: "2026-12-12T01:00:00.000Z" };
    expect(openAt(fri, "2026-12-11T21:00:00Z")).toEqual(open);
    expect(openAt(fri, "2026-12-11T23:30:00Z")).toEqual(open); // Sat 00:30 local
    expect(openAt(fri, "2026-12-12T00:59:00Z")).toEqual(open);
    expect(openAt(fri, "2026-12-12T01:00:00Z")).toBeUndefined();
    // Sat 22:00 local: Saturday is not a day of the window, Sun 00:30 neither
    expect(openAt(fri, "2026-12-12T21:30:00Z")).toBeUndefined();
    expect(openAt(fri, "2026-12-12T23:30:00Z")).toBeUndefined();
    // Thu 23:30 local is not inside (the window of Thursday does not exist)
    expect(openAt(fri, "2026-12-10T22:30:00Z")).toBeUndefined();
    // ending at midnight: open until the next day starts
    expect(openAt(["Sat 22:00-00:00 UTC"], "2026-12-12T23:59:00Z")).toEqual({ start: "2026-12-12T22:00:00.000Z", end: "2026-12-13T00:00:00.000Z" });
  });

  test("the spring change day in Berlin: a window across the skipped hour is an hour shorter", () => {
    // Sun 2026-03-29 01:00 CET (00:00Z) to 05:00 CEST (03:00Z): 3 hours
    const w = openAt(["Sun 01:00-05:00 Europe/Berlin"], "2026-03-29T01:30:00Z");
    expect(w).toEqual({ start: "2026-03-29T00:00:00.000Z", end: "2026-03-29T03:00:00.000Z" });
    // a window opening in the skipped hour opens when the clock reaches 03:00 CEST... past the gap
    expect(openAt(["Sun 02:30-04:00 Europe/Berlin"], "2026-03-29T01:45:00Z")).toEqual({ start: "2026-03-29T01:30:00.000Z", end: "2026-03-29T02:00:00.000Z" });
    expect(openAt(["Sun 02:30-04:00 Europe/Berlin"], "2026-03-29T01:15:00Z")).toBeUndefined();
    // a week before and after: 02:30-04:00 is 1 h 30 min, in CET and in CEST
    expect(openAt(["Sun 02:30-04:00 Europe/Berlin"], "2026-03-22T02:00:00Z")).toEqual({ start: "2026-03-22T01:30:00.000Z", end: "2026-03-22T03:00:00.000Z" });
    expect(openAt(["Sun 02:30-04:00 Europe/Berlin"], "2026-04-05T01:00:00Z")).toEqual({ start: "2026-04-05T00:30:00.000Z", end: "2026-04-05T02:00:00.000Z" });
  });

  test("the autumn change day in Berlin: a window across the repeated hour is an hour longer, open in both 02:30s", () => {
    // Sun 2026-10-25 01:00 CEST (Sat 23:00Z) to 05:00 CET (04:00Z): 5 hours
    const open = { start: "2026-10-24T23:00:00.000Z", end: "2026-10-25T04:00:00.000Z" };
    expect(openAt(["Sun 01:00-05:00 Europe/Berlin"], "2026-10-24T23:00:00Z")).toEqual(open);
    expect(openAt(["Sun 01:00-05:00 Europe/Berlin"], "2026-10-25T03:59:00Z")).toEqual(open);
    const repeated = ["Sun 02:00-03:00 Europe/Berlin"];
    // from the first 02:00 (CEST, 00:00Z) to 03:00 CET (02:00Z)
    expect(openAt(repeated, "2026-10-25T00:30:00Z")).toEqual({ start: "2026-10-25T00:00:00.000Z", end: "2026-10-25T02:00:00.000Z" }); // 02:30 CEST
    expect(openAt(repeated, "2026-10-25T01:30:00Z")).toEqual({ start: "2026-10-25T00:00:00.000Z", end: "2026-10-25T02:00:00.000Z" }); // 02:30 CET
    expect(openAt(repeated, "2026-10-25T02:00:00Z")).toBeUndefined();
  });

  test("a window crossing midnight on a change day; other zones' own change days", () => {
    // Sat 2026-03-28 23:00 CET (22:00Z) to Sun 04:00 CEST (02:00Z): 4 hours, not 5
    expect(openAt(["Sat 23:00-04:00 Europe/Berlin"], "2026-03-29T01:30:00Z")).toEqual({ start: "2026-03-28T22:00:00.000Z", end: "2026-03-29T02:00:00.000Z" });
    // New York springs forward on 2026-03-08 at 02:00 EST (07:00Z)
    expect(openAt(["Sun 01:00-04:00 America/New_York"], "2026-03-08T06:30:00Z")).toEqual({ start: "2026-03-08T06:00:00.000Z", end: "2026-03-08T08:00:00.000Z" });
    expect(openAt(["daily 10:00-11:00 Asia/Kolkata"], "2026-07-15T05:00:00Z")).toEqual({ start: "2026-07-15T04:30:00.000Z", end: "2026-07-15T05:30:00.000Z" });
  });

  test("windows that touch or overlap are one; the end is the last of them", () => {
    const two = ["Sat 22:00-24:00 UTC", "Sun 00:00-04:00 UTC"];
    const joined = windowAt(parseWindows(two), at("2026-12-12T23:00:00Z"))!;
    expect([iso(joined.startMs), iso(joined.endMs)]).toEqual(["2026-12-12T22:00:00.000Z", "2026-12-13T04:00:00.000Z"]);
    expect(joined.specs).toEqual(two);
    // zones mixed: Berlin's Sat 02:00-06:00 (01:00Z-05:00Z) and UTC's Sat 04:00-07:00
    expect(openAt(["Sat 02:00-06:00 Europe/Berlin", "Sat 04:00-07:00 UTC"], "2026-12-12T01:30:00Z")).toEqual({ start: "2026-12-12T01:00:00.000Z", end: "2026-12-12T07:00:00.000Z" });
    // a gap between them: not joined
    expect(openAt(["Sat 22:00-23:00 UTC", "Sat 23:30-23:59 UTC"], "2026-12-12T22:30:00Z")).toEqual({ start: "2026-12-12T22:00:00.000Z", end: "2026-12-12T23:00:00.000Z" });
  });

  test("the next window to open", () => {
    const w = parseWindows(["Sat 02:00-06:00 Europe/Berlin"]);
    expect(iso(nextWindow(w, at("2026-12-07T12:00:00Z"))?.startMs)).toBe("2026-12-12T01:00:00.000Z");
    // while one is open, the next is a week later
    expect(iso(nextWindow(w, at("2026-12-12T02:00:00Z"))?.startMs)).toBe("2026-12-19T01:00:00.000Z");
    expect(iso(nextWindow(parseWindows(["Mon-Fri 22:00-02:00 UTC"]), at("2026-12-12T10:00:00Z"))?.startMs)).toBe("2026-12-14T22:00:00.000Z");
  });
});

describe("the check before a run", () => {
  const windows = parseWindows(["Sat 02:00-06:00 Europe/Berlin"]);

  test("outside every window: refused (exit 3), saying when it is and when the next window opens", () => {
    const err = thrown(() => checkWindow(windows, at("2026-12-07T12:14:00Z"), undefined));
    expect(err.exitCode).toBe(ExitCode.Refused);
    expect(err.why).toBe('it is Mon 2026-12-07 13:14 Europe/Berlin, outside the maintenance window "Sat 02:00-06:00 Europe/Berlin"');
    expect(err.hint).toMatch(/^the next window opens Sat 2026-12-12 02:00 Europe\/Berlin, in 4d 12h 46m; run it then \(nothing was changed\)$/);
  });

  test("inside, with an expected duration that fits: the window, to its end", () => {
    const open = checkWindow(windows, at("2026-12-12T02:00:00Z"), { ms: 3 * 3_600_000, source: "--expected-duration" });
    expect(iso(open.endMs)).toBe("2026-12-12T05:00:00.000Z");
    // exactly to the end fits
    expect(checkWindow(windows, at("2026-12-12T02:00:00Z"), { ms: 3 * 3_600_000, source: "x" }).specs).toEqual(["Sat 02:00-06:00 Europe/Berlin"]);
    // no expectation: inside is enough
    expect(checkWindow(windows, at("2026-12-12T04:59:00Z"), undefined).endMs).toBe(at("2026-12-12T05:00:00Z"));
  });

  test("an expected duration that would overrun the window's end: refused, with the figures and their source", () => {
    const err = thrown(() => checkWindow(windows, at("2026-12-12T04:00:00Z"), { ms: 3_600_001, source: "the disruptive part of run X" }));
    expect(err.exitCode).toBe(ExitCode.Refused);
    expect(err.why).toBe('the run is expected to take 1:00:00 (the disruptive part of run X), but the window "Sat 02:00-06:00 Europe/Berlin" ends Sat 2026-12-12 06:00 Europe/Berlin, in 1:00:00');
    expect(err.hint).toMatch(/--expected-duration/);
  });
});
