/**
 * Server-Sent Events for a resource that changes until it reaches a final state (a job, a
 * training): a `snapshot` first, then every event the emitter sends under the resource's key,
 * until an event says the state is final or the client goes; a comment every 15 s keeps proxies
 * from closing the connection.
 */
import type { EventEmitter } from "node:events";
import type { Request, Response } from "express";

export function streamEvents<E extends { type: string }>(
  req: Request,
  res: Response,
  o: {
    snapshot: unknown;
    /** Already final: only the snapshot is sent. */
    final: boolean;
    events: EventEmitter;
    key: string;
    /** What is sent for an event (default: the event). */
    view?: (e: E) => unknown;
    /** The last event of the stream. */
    ends: (e: E) => boolean;
  },
): void {
  res.set({
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    Connection: "keep-alive",
    "X-Accel-Buffering": "no",
  });
  res.flushHeaders();
  let id = 0;
  const send = (type: string, data: unknown) =>
    res.write(`id: ${++id}\nevent: ${type}\ndata: ${JSON.stringify(data)}\n\n`);
  send("snapshot", o.snapshot);
  if (o.final) return void res.end();
  const onEvent = (e: E) => {
    send(e.type, o.view ? o.view(e) : e);
    if (o.ends(e)) stop();
  };
  const heartbeat = setInterval(() => res.write(": keep-alive\n\n"), 15_000);
  const stop = () => {
    clearInterval(heartbeat);
    o.events.off(o.key, onEvent);
    res.end();
  };
  o.events.on(o.key, onEvent);
  req.on("close", stop);
}
