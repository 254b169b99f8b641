import { StringDecoder } from "node:string_decoder";

/**
 * Splits a byte stream (a child's stdout) into lines. A multi-byte UTF-8 character that a chunk
 * boundary cuts in two is kept whole (`chunk.toString()` per chunk would corrupt it), and a last
 * line without a newline is delivered by `end()`.
 */
export function lineSplitter(onLine: (line: string) => void): { push(chunk: Buffer): void; end(): void } {
  const decoder = new StringDecoder("utf8");
  let partial = "";
  const emit = (text: string) => {
    const lines = (partial + text).split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) onLine(line.endsWith("\r") ? line.slice(0, -1) : line);
  };
  return {
    push: (chunk) => emit(decoder.write(chunk)),
    end() {
      emit(decoder.end());
      if (partial) onLine(partial);
      partial = "";
    },
  };
}
