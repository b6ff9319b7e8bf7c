import { existsSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

/** The package root (the folder holding package.json), from src/ or dist/src/ alike. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json")) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

/**
 * A compiled module beside this one (worker processes need .js): the file itself when running from
 * dist/, its built copy in dist/ when running from the TypeScript sources (the tests).
 */
export function compiledModule(url: URL): string {
  const path = fileURLToPath(url);
  if (existsSync(path)) return path;
  const root = packageRoot();
  return join(root, "dist", relative(root, path));
}
