// Starts the real `jing serve` on 127.0.0.1 (a free port unless one is given) and stops it.
import { spawn } from 'node:child_process';

export const JING = process.env.JING_BIN;
export const FIXTURES = process.env.JING_FIXTURES;
export const MODEL = `${FIXTURES}/models/qwen2-f16.gguf`;

export async function startServer(args, { port = 0, env = {} } = {}) {
  const proc = spawn(JING, ['serve', '--host', '127.0.0.1', '--port', String(port), ...args],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
  let log = '';
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${log}`)), 20000);
    proc.stderr.on('data', (d) => {
      log += d;
      const m = log.match(/serving on (http:\/\/[0-9.]+:\d+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited with ${code}:\n${log}`)); });
  });
  return {
    url, proc, log: () => log,
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode !== null) return proc.exitCode;
      const done = new Promise((r) => proc.on('exit', (code, sig) => r(code ?? sig)));
      proc.kill(signal);
      return done;
    },
  };
}

export function percentile(values, p) {
  if (!values.length) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}
