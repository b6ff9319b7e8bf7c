/**
 * docs/methods.md's parameter table is the methods' declaration (src/recon/methods.ts), row for row:
 * a parameter added, removed or re-ranged without the documentation fails here.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { METHODS, tunedDefaults } from "../../src/recon/methods.js";

function declaredRows(): string[][] {
  const rows: string[][] = [];
  for (const m of METHODS)
    for (const [key, s] of Object.entries(m.params)) {
      const range =
        s.kind === "choice" ? s.choices.join(", ") : s.kind === "string" ? "text" : `${s.min} .. ${s.max}`;
      const perModality = tunedDefaults(m)
        .filter(([, p]) => key in p)
        .map(([kind, p]) => `${kind} ${p[key]}`);
      const value = s.default === "" ? '""' : String(s.default);
      const fallback = perModality.length ? `${value} (${perModality.join(", ")})` : value;
      rows.push([`\`${m.name}\``, `\`${key}\``, s.kind, range, fallback, s.help]);
    }
  return rows;
}

function documentedRows(): string[][] {
  const text = readFileSync(new URL("../../docs/methods.md", import.meta.url), "utf8");
  const table = text.slice(text.indexOf("## Parameters"));
  return table
    .split("\n")
    .filter((l) => l.startsWith("| `"))
    .map((l) =>
      l
        .slice(1, -1)
        .split("|")
        .map((c) => c.trim()),
    );
}

describe("docs/methods.md", () => {
  it("lists every declared parameter with its type, range, default and help", () => {
    expect(documentedRows()).toEqual(declaredRows());
  });
});
