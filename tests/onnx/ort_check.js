// ort_check.js — ONNX Runtime (npm's onnxruntime-node, CPU) on convnet's exports:
//   node tests/onnx/ort_check.js DIR TOL
// For each DIR/NAME.onnx with NAME.x.bin (input, float32 N,C,H,W; its dims in NAME.x.shape)
// and NAME.y.bin (convnet's output), runs the model and prints max |ort - convnet| / max |convnet|;
// exit status 1 when any exceeds TOL. Installed by `make check` (scripts/setup.sh --check).
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

function floats(file) {
  const b = fs.readFileSync(file);
  return new Float32Array(b.buffer, b.byteOffset, b.length / 4);
}

async function main() {
  const [dir, tolText] = process.argv.slice(2);
  const tol = Number(tolText);
  let bad = 0, n = 0;
  for (const f of fs.readdirSync(dir).filter((f) => f.endsWith('.onnx')).sort()) {
    const name = f.slice(0, -5), base = path.join(dir, name);
    if (!fs.existsSync(base + '.y.bin')) continue;
    const dims = fs.readFileSync(base + '.x.shape', 'utf8').trim().split(/\s+/).map(Number);
    // graph optimisations off: the file as written is checked, and 1.20.1's PadFusion folds a Pad
    // of zeros into a following MaxPool as its (-inf) padding, which changes the result
    const session = await ort.InferenceSession.create(path.join(dir, f), { graphOptimizationLevel: 'disabled' });
    const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', floats(base + '.x.bin'), dims) };
    const out = (await session.run(feeds))[session.outputNames[0]].data;
    const want = floats(base + '.y.bin');
    let diff = 0, scale = 0;
    if (out.length !== want.length) {
      console.log(`${name}: ONNX Runtime gave ${out.length} values, convnet ${want.length}`);
      bad++;
      continue;
    }
    for (let i = 0; i < want.length; i++) {
      diff = Math.max(diff, Math.abs(out[i] - want[i]));
      scale = Math.max(scale, Math.abs(want[i]));
    }
    const rel = diff / (scale || 1);
    const ok = rel <= tol;
    console.log(`${name.padEnd(16)} ${String(want.length).padStart(7)} values  max rel err ${rel.toExponential(2)}  ${ok ? 'ok' : 'FAIL'}`);
    bad += !ok;
    n++;
  }
  if (!n) { console.log('no models checked'); process.exit(1); }
  process.exit(bad ? 1 : 0);
}
main().catch((e) => { console.error(e.message || e); process.exit(1); });
