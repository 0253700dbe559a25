/**
 * The shape of src/ as `deno info` sees it (type imports included): no import cycle, and
 * dependencies that point one way (docs/architecture.md, «Layers»).
 */
import assert from "node:assert/strict";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const CONFIG = new URL("../../deno.json", import.meta.url).pathname;

interface InfoModule {
  specifier: string;
  dependencies?: {
    code?: { specifier: string };
    type?: { specifier: string };
    isDynamic?: boolean;
  }[];
}

/** `deno info --json` of main.ts. */
async function denoInfo(): Promise<{ modules: InfoModule[] }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "--config", CONFIG, MAIN],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

async function srcGraph(): Promise<Map<string, string[]>> {
  const info = await denoInfo();
  const local = (s: string) => s.startsWith("file://") && s.includes("/src/");
  const name = (s: string) => s.slice(s.indexOf("/src/") + 5);
  const graph = new Map<string, string[]>();
  for (const m of info.modules) {
    if (!local(m.specifier)) continue;
    const deps = (m.dependencies ?? []).flatMap((d) => [d.code?.specifier, d.type?.specifier])
      .filter((s): s is string => s !== undefined && local(s)).map(name);
    graph.set(name(m.specifier), [...new Set(deps)]);
  }
  return graph;
}

/** Strongly connected components of more than one module (Tarjan). */
function cycles(graph: Map<string, string[]>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
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
      if (component.length > 1) found.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

Deno.test("imports: no cycle in src/, type imports included", async () => {
  assert.deepEqual(cycles(await srcGraph()), []);
});

Deno.test("imports: dependencies point one way (cli → vm/image/update/doctor → the rest)", async () => {
  const FORBIDDEN: [RegExp, RegExp][] = [
    [/^(?!cli\/)/, /^cli\//],
    [/^(artifact|qemu|protocol|iso|config)\//, /^(vm|image|update|doctor)\//],
    [/^image\//, /^vm\//],
  ];
  const broken: string[] = [];
  for (const [from, deps] of await srcGraph()) {
    for (const [who, target] of FORBIDDEN) {
      for (const dep of deps) {
        if (who.test(from) && target.test(dep)) broken.push(`${from} → ${dep}`);
      }
    }
  }
  assert.deepEqual(broken, []);
});

Deno.test("imports: the command tree loads no ISO writer, pull, GitHub, publish or upgrade code up front", async () => {
  const info = await denoInfo();
  const modules = new Map(info.modules.map((m) => [m.specifier, m]));
  // What `emu start` (and every other command) evaluates before its action runs: the
  // static code imports of the CLI; a command imports its heavy parts when it runs.
  const root = [...modules.keys()].find((s) => s.endsWith("/src/cli/run.ts"))!;
  const loaded = new Set([root]);
  const queue = [root];
  while (queue.length > 0) {
    for (const dep of modules.get(queue.pop()!)?.dependencies ?? []) {
      const next = dep.code?.specifier;
      if (dep.isDynamic || next === undefined || loaded.has(next)) continue;
      loaded.add(next);
      queue.push(next);
    }
  }
  const heavy = [...loaded].map((s) => s.slice(s.indexOf("/src/") + 5)).filter((s) =>
    /^(iso|image|update)\/(?!publish_defaults|target)/.test(s) ||
    /^artifact\/(github|github_pull|ci_artifact|pull|release_pull|plain|download|install|release_write|signing|descriptor)\.ts$/
      .test(s)
  );
  assert.deepEqual(heavy, []);
  assert.ok(loaded.size < 120, `${loaded.size} modules`);
});
