/**
 * Go's text/tabwriter, as upstream's CLI prints its tables and status: cells end at a tab;
 * consecutive lines that have a cell in the same column form a block whose width is the widest
 * cell plus padding; the text after a line's last tab is not a cell and sets no width. Aligned
 * left, padded with spaces, widths in characters.
 */
export interface TabwriterOptions {
  minWidth: number;
  padding: number;
}

export function tabwrite(text: string, options: TabwriterOptions): string {
  const endsWithNewline = text.endsWith("\n");
  const lines = (endsWithNewline ? text.slice(0, -1) : text).split("\n").map((line) => line.split("\t"));
  const out: string[] = [];
  format(lines, 0, lines.length, [], options, out);
  return out.join("\n") + (endsWithNewline ? "\n" : "");
}

function format(lines: string[][], start: number, end: number, widths: number[], options: TabwriterOptions, out: string[]): void {
  const column = widths.length;
  let printed = start;
  for (let i = start; i < end; i++) {
    // Lines whose cells end before this column belong to the enclosing block.
    if (column >= lines[i]!.length - 1) continue;
    writeLines(lines, printed, i, widths, out);
    let width = options.minWidth;
    let blockEnd = i;
    for (; blockEnd < end && column < lines[blockEnd]!.length - 1; blockEnd++) {
      width = Math.max(width, cellWidth(lines[blockEnd]![column]!) + options.padding);
    }
    format(lines, i, blockEnd, [...widths, width], options, out);
    printed = blockEnd;
    i = blockEnd - 1;
  }
  writeLines(lines, printed, end, widths, out);
}

function writeLines(lines: string[][], start: number, end: number, widths: number[], out: string[]): void {
  for (let i = start; i < end; i++) {
    const cells = lines[i]!;
    out.push(cells.map((cell, j) => (j < widths.length ? cell + " ".repeat(Math.max(0, widths[j]! - cellWidth(cell))) : cell)).join(""));
  }
}

function cellWidth(cell: string): number {
  return [...cell].length;
}
