// A streaming chat client that times every token: when the response headers arrive, when each
// SSE event carrying content arrives, when the stream ends. vegeta times whole responses only,
// so the streaming profile uses this; it runs few requests at a time, so a Node client is not
// the bottleneck. node:http with a keep-alive agent: no per-request connection setup.
import { Agent, request } from 'node:http';

export interface StreamTiming {
  ok: boolean;
  status: number;
  error?: string;
  /** Milliseconds from sending the request. */
  headersMs: number;
  /** First event with non-empty content (time to first token). */
  ttftMs: number;
  /** Arrival of each content event, in order. */
  chunkMs: number[];
  /** Each content event's trip from the mock's write to our read (x-mock-timestamps: 1), ms. */
  tripMs: number[];
  totalMs: number;
}

const agent = new Agent({ keepAlive: true, maxSockets: 256 });

/** An SSE event whose delta carries content: `"content":"` followed by anything but `"`. */
const CONTENT = /"content":"(?!")/;
/** The mock's send time of a chunk (x-mock-timestamps: 1), wall-clock ms. */
const SENT = /"x_mock_sent_ms":([\d.]+)/;

export function streamChat(url: string, headers: Record<string, string>, body: string): Promise<StreamTiming> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const timing: StreamTiming = {
      ok: false,
      status: 0,
      headersMs: 0,
      ttftMs: Number.NaN,
      chunkMs: [],
      tripMs: [],
      totalMs: 0,
    };
    const req = request(
      url,
      {
        method: 'POST',
        agent,
        headers: { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        timing.status = res.statusCode ?? 0;
        timing.headersMs = performance.now() - t0;
        let pending = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          const wall = performance.timeOrigin + performance.now();
          const now = performance.now() - t0;
          pending += d;
          let cut = pending.indexOf('\n\n');
          while (cut >= 0) {
            const event = pending.slice(0, cut);
            pending = pending.slice(cut + 2);
            if (CONTENT.test(event)) {
              if (timing.chunkMs.length === 0) timing.ttftMs = now;
              timing.chunkMs.push(now);
              const sent = SENT.exec(event);
              if (sent) timing.tripMs.push(wall - Number(sent[1]));
            }
            cut = pending.indexOf('\n\n');
          }
        });
        res.on('end', () => {
          timing.totalMs = performance.now() - t0;
          timing.ok = timing.status === 200 && timing.chunkMs.length > 0;
          if (!timing.ok) timing.error = `HTTP ${timing.status}`;
          resolve(timing);
        });
        res.on('error', (err) => {
          timing.error = err.message;
          resolve(timing);
        });
      },
    );
    req.on('error', (err) => {
      timing.error = err.message;
      timing.totalMs = performance.now() - t0;
      resolve(timing);
    });
    req.end(body);
  });
}
