/**
 * The architecture as a test (docs/architecture.md, "Folders and who may import whom"): no import
 * cycles, no import up the layer order, no source file over MAX_LINES lines. Imports are read with
 * TypeScript's own pre-processor (static, dynamic and type-only imports and re-exports alike).
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "..");
const SCANNED = ["src", "server", "operators", "phantoms", "viewer/src", "bench"];
const MAX_LINES = 350;

/**
 * The layers, lowest first, as docs/architecture.md orders them: a file may import its own layer
 * and the layers before it. `src/errors.ts` and `src/package-root.ts` (UserError, the package's
 * folder) lie under all of them; `bench` over all but the viewer; the viewer imports nothing of
 * ours outside its folder (it talks to the server over HTTP only). One difference from the table:
 * the server comes before the CLI, which composes it.
 */
const LAYERS: readonly { name: string; paths: readonly string[]; isolated?: boolean }[] = [
  { name: "base", paths: ["src/errors.ts", "src/package-root.ts"] },
  { name: "operators", paths: ["operators/"] },
  { name: "phantoms", paths: ["phantoms/"] },
  { name: "image", paths: ["src/image/"] },
  { name: "io", paths: ["src/io/"] },
  { name: "metrics", paths: ["src/metrics/"] },
  { name: "baselines", paths: ["src/baselines/"] },
  { name: "prior", paths: ["src/prior/"] },
  { name: "sampling", paths: ["src/sampling/"] },
  { name: "recon", paths: ["src/recon/"] },
  { name: "queue", paths: ["src/queue/"] },
  // The server before the CLI: `scorerecon serve` starts the server (src/cli/serve-command.ts),
  // and nothing of the server imports the CLI.
  { name: "server", paths: ["server/"] },
  { name: "cli", paths: ["src/cli/"] },
  { name: "bench", paths: ["bench/"] },
  { name: "viewer", paths: ["viewer/src/"], isolated: true },
];

/**
 * Upward imports allowed for now, each with the reason; every entry is to be removed, not added to.
 */
const UPWARD_EXCEPTIONS: readonly [from: string, to: string][] = [];

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(ROOT, dir)).sort()) {
    const path = join(dir, name);
    if (statSync(join(ROOT, path)).isDirectory()) out.push(...sourceFiles(path));
    else if (name.endsWith(".ts") && !name.endsWith(".d.ts")) out.push(path);
  }
  return out;
}

const files = SCANNED.flatMap(sourceFiles);
const known = new Set(files);

/** A relative import specifier as the scanned file it names (".js" is the compiled ".ts"). */
function resolveImport(from: string, spec: string): string | undefined {
  if (!spec.startsWith(".")) return undefined;
  const base = relative(ROOT, resolve(ROOT, dirname(from), spec));
  for (const candidate of [base.replace(/\.js$/, ".ts"), `${base}.ts`, join(base, "index.ts")])
    if (known.has(candidate)) return candidate;
  return undefined;
}

const imports = new Map<string, string[]>(
  files.map((f) => {
    const info = ts.preProcessFile(readFileSync(join(ROOT, f), "utf8"), true, true);
    const targets = info.importedFiles
      .map((i) => resolveImport(f, i.fileName))
      .filter((t): t is string => t !== undefined && t !== f);
    return [f, [...new Set(targets)]];
  }),
);

function layerOf(file: string): number {
  const i = LAYERS.findIndex((l) => l.paths.some((p) => (p.endsWith("/") ? file.startsWith(p) : file === p)));
  if (i < 0) throw new Error(`${file} is in no layer: add its folder to LAYERS`);
  return i;
}

/** One cycle per strongly connected component of the import graph (Tarjan), as a path a -> ... -> a. */
function importCycles(graph: Map<string, string[]>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const visit = (v: string) => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) components.push(component);
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  // Within a component, the shortest way from its first file back to itself.
  return components.map((component) => {
    const members = new Set(component);
    const start = [...component].sort()[0];
    const previous = new Map<string, string>();
    const queue = [start];
    while (queue.length) {
      const v = queue.shift()!;
      for (const w of graph.get(v) ?? []) {
        if (!members.has(w) || previous.has(w)) continue;
        previous.set(w, v);
        if (w === start) queue.length = 0;
        else queue.push(w);
      }
    }
    const path = [start];
    for (let v = previous.get(start)!; v !== start; v = previous.get(v)!) path.unshift(v);
    return [start, ...path];
  });
}

describe("architecture (docs/architecture.md)", () => {
  it("scans the source folders", () => {
    expect(files.length).toBeGreaterThan(50);
    expect(files).toContain("src/recon/reconstruct.ts");
  });

  it("has no import cycles", () => {
    const cycles = importCycles(imports).map((c) => c.join(" -> "));
    expect(cycles).toEqual([]);
  });

  it("imports only down the layer order", () => {
    const allowed = new Set(UPWARD_EXCEPTIONS.map(([a, b]) => `${a} -> ${b}`));
    const upward: string[] = [];
    for (const [from, targets] of imports) {
      const own = layerOf(from);
      for (const to of targets) {
        const theirs = layerOf(to);
        const wrong = LAYERS[own].isolated ? theirs !== own : theirs > own;
        if (wrong && !allowed.has(`${from} -> ${to}`))
          upward.push(`${from} (${LAYERS[own].name}) -> ${to} (${LAYERS[theirs].name})`);
      }
    }
    expect(upward).toEqual([]);
  });

  it("keeps the exceptions list to imports that exist", () => {
    const stale = UPWARD_EXCEPTIONS.filter(([a, b]) => !imports.get(a)?.includes(b));
    expect(stale).toEqual([]);
  });

  it(`has no source file over ${MAX_LINES} lines`, () => {
    const long = files
      .map((f) => ({ f, lines: readFileSync(join(ROOT, f), "utf8").split("\n").length - 1 }))
      .filter(({ lines }) => lines > MAX_LINES)
      .map(({ f, lines }) => `${f}: ${lines} lines`);
    expect(long).toEqual([]);
  });
});
