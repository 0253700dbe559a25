/**
 * `python3 -m http.server` on 127.0.0.1 serving a directory, as its own process (so the
 * server's work is not on the benchmarked process), started and waited for.
 */

/** A running server. */
export interface StaticServer {
  /** `http://127.0.0.1:<port>`. */
  url: string;
  /** Stops the server (SIGKILL). */
  kill(): void;
}

/** Serves `dir` on `port` and waits until it answers. */
export async function startStaticServer(dir: string, port: number): Promise<StaticServer> {
  const server = new Deno.Command("python3", {
    args: ["-m", "http.server", String(port), "--bind", "127.0.0.1", "--directory", dir],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    const ok = await fetch(`${url}/`).then((r) => (r.body?.cancel(), true), () => false);
    if (ok) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url,
    kill: () => {
      try {
        server.kill("SIGKILL");
      } catch { /* gone */ }
    },
  };
}
