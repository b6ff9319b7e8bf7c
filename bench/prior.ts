/**
 * `npm run bench:prior`: training steps per second and network evaluations per second of the
 * score network on this machine's backend. Numbers only.
 * Usage: node dist/bench/prior.js [--channels 32] [--backend wasm]
 */
import { initBackend, tf } from "../src/prior/backend.js";
import { VeSde } from "../src/prior/sde.js";
import { DEFAULT_UNET, ScoreUNet } from "../src/prior/unet.js";

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
};

async function main() {
  const backend = await initBackend(arg("backend", "auto") as never, console.log);
  const channels = Number(arg("channels", String(DEFAULT_UNET.channels)));
  const config = { ...DEFAULT_UNET, channels };
  const net = new ScoreUNet(config, new VeSde(0.01, 50));
  console.log(
    `score U-Net channels ${channels} x [${config.channelMult}], ${net.parameterCount()} parameters, backend ${backend}`,
  );
  const vars = net.trainable().map(([, v]) => v);
  const opt = tf.train.adam(1e-4);
  for (const [size, batch] of [
    [128, 4],
    [256, 1],
  ]) {
    const x = tf.randomNormal([batch, size, size, 1]) as tf.Tensor4D;
    const t = Array.from({ length: batch }, (_, i) => (i + 0.5) / batch);
    const step = () =>
      tf.tidy(() => {
        const { grads } = tf.variableGrads(
          () => tf.mean(tf.square(tf.add(net.apply(x, t), x))) as tf.Scalar,
          vars,
        );
        opt.applyGradients(grads as never);
      });
    step();
    const n = 3;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) step();
    const s = (performance.now() - t0) / 1000 / n;
    console.log(
      `training ${size}x${size} batch ${batch}: ${(1 / s).toFixed(2)} steps/s (${(s * 1000).toFixed(0)} ms/step)`,
    );
    x.dispose();
  }
  for (const size of [128, 256]) {
    const x = tf.randomNormal([1, size, size, 1]) as tf.Tensor4D;
    const evalOnce = async () => {
      const y = tf.tidy(() => net.apply(x, [0.5]));
      await y.data();
      y.dispose();
    };
    await evalOnce();
    const n = 5;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await evalOnce();
    const s = (performance.now() - t0) / 1000 / n;
    console.log(
      `network evaluations ${size}x${size}: ${(1 / s).toFixed(2)} NFE/s (${(s * 1000).toFixed(0)} ms each)`,
    );
    x.dispose();
  }
}

await main();
