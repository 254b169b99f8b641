import { lineSplitter } from "../../lib/lines";

const split = (chunks: Buffer[]) => {
  const lines: string[] = [];
  const s = lineSplitter((l) => lines.push(l));
  for (const c of chunks) s.push(c);
  s.end();
  return lines;
};

test("a multi-byte character cut by a chunk boundary stays whole", () => {
  const text = Buffer.from('{"note":"ü → ✅ 日本"}\n{"b":1}\n', "utf8");
  // every cut point, including inside each multi-byte sequence
  for (let cut = 1; cut < text.length; cut++) {
    expect(split([text.subarray(0, cut), text.subarray(cut)])).toEqual(['{"note":"ü → ✅ 日本"}', '{"b":1}']);
  }
});

test("CRLF endings are trimmed and a last line without newline is delivered at the end", () => {
  expect(split([Buffer.from("a\r\nb"), Buffer.from("c")])).toEqual(["a", "bc"]);
  expect(split([Buffer.from("")])).toEqual([]);
});
