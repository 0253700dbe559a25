/**
 * A real HTTP server on 127.0.0.1 for download tests: serves files with ETag and Range
 * support, records every request, and injects faults on demand.
 */

/** A fault for the next matching request(s). */
export type Fault =
  | { kind: "status"; status: number; times: number }
  | { kind: "drop-at"; fraction: number; times: number };

/** One request as the server saw it. */
export interface SeenRequest {
  path: string;
  range: string | null;
  ifRange: string | null;
}

/** A running test server. */
export interface TestServer {
  url: string;
  requests: SeenRequest[];
  /** Serve `bytes` at `path`. */
  file(path: string, bytes: Uint8Array): void;
  /** Inject a fault for `path`. */
  fault(path: string, fault: Fault): void;
  close(): Promise<void>;
}

/** Starts a server on an ephemeral port. */
export function startServer(): TestServer {
  const files = new Map<string, { bytes: Uint8Array; etag: string }>();
  const faults = new Map<string, Fault>();
  const requests: SeenRequest[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const path = new URL(req.url).pathname;
    requests.push({ path, range: req.headers.get("range"), ifRange: req.headers.get("if-range") });
    const file = files.get(path);
    const fault = faults.get(path);
    let dropFraction: number | null = null;
    if (fault && fault.times > 0) {
      fault.times--;
      if (fault.kind === "status") return new Response("injected", { status: fault.status });
      dropFraction = fault.fraction;
    }
    if (!file) return new Response("not found", { status: 404 });
    let start = 0;
    let status = 200;
    const range = req.headers.get("range");
    const ifRange = req.headers.get("if-range");
    if (range && (!ifRange || ifRange === file.etag)) {
      start = Number(/^bytes=(\d+)-$/.exec(range)?.[1] ?? 0);
      status = 206;
    }
    const body = file.bytes.subarray(start);
    const headers = new Headers({
      etag: file.etag,
      "content-length": String(body.length),
      "accept-ranges": "bytes",
    });
    if (status === 206) {
      headers.set("content-range", `bytes ${start}-${file.bytes.length - 1}/${file.bytes.length}`);
    }
    const dropAt = dropFraction === null ? -1 : Math.floor(body.length * dropFraction);
    let cancelled = false;
    const stream = new ReadableStream<Uint8Array>({
      cancel() {
        cancelled = true;
      },
      start(controller) {
        const chunk = 64 * 1024;
        let at = 0;
        const push = () => {
          if (cancelled) return;
          if (dropAt >= 0 && at >= dropAt) {
            controller.error(new Error("injected connection drop"));
            return;
          }
          if (at >= body.length) {
            controller.close();
            return;
          }
          const end = dropAt >= 0 ? Math.min(at + chunk, dropAt) : at + chunk;
          controller.enqueue(body.slice(at, end));
          at = end;
          setTimeout(push, 0);
        };
        push();
      },
    });
    return new Response(stream, { status, headers });
  });
  const port = (server.addr as Deno.NetAddr).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    file: (path, bytes) => files.set(path, { bytes, etag: `"${crypto.randomUUID()}"` }),
    fault: (path, fault) => faults.set(path, fault),
    close: () => server.shutdown(),
  };
}
