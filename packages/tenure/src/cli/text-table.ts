/**
 * Plain aligned tables for a terminal: a header row, columns two spaces apart, one line per
 * row (line breaks and tabs inside a cell become spaces, long cells are clipped).
 *
 * Kept hand-written: text-table is unmaintained since 2014 and clips nothing, cli-table3 draws
 * boxes and brings its own dependencies; neither is worth a dependency for these lines.
 *
 * @packageDocumentation
 */

/** The longest a cell may be before it is clipped with `…`. */
const MAX_CELL = 80;

/** Formats `rows` under `header` as aligned lines, each ending with a newline. */
export function formatTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
): string {
  const cells = [header, ...rows].map((row) => row.map(cleanCell));
  const widths = header.map((_, column) =>
    Math.max(...cells.map((row) => (row[column] ?? '').length)),
  );
  return cells
    .map((row) =>
      row
        .map((cell, column) =>
          column === row.length - 1 ? cell : cell.padEnd(widths[column] ?? 0),
        )
        .join('  ')
        .trimEnd(),
    )
    .map((line) => `${line}\n`)
    .join('');
}

function cleanCell(cell: string): string {
  const flat = cell.replace(/[\r\n\t]+/g, ' ');
  const chars = [...flat];
  return chars.length > MAX_CELL ? `${chars.slice(0, MAX_CELL - 1).join('')}…` : flat;
}
