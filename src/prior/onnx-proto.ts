/**
 * ONNX protobuf pieces of the score network's graph (onnx-graph.ts): attributes, initializer
 * tensors, value infos and the model's encoding (opset 13), over onnx-proto.
 */
import onnxProto from "onnx-proto";

const { onnx } = onnxProto;
export type INode = onnxProto.onnx.INodeProto;
export type ITensor = onnxProto.onnx.ITensorProto;
type IAttribute = onnxProto.onnx.IAttributeProto;
type IValueInfo = onnxProto.onnx.IValueInfoProto;

/** A parameter's shape (tfjs layout) and values. */
export interface NamedWeight {
  shape: number[];
  data: Float32Array;
}

export type Attr = number | number[] | string;

export function attribute(name: string, v: Attr): IAttribute {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === "string") return { name, type: T.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: T.INTS, ints: v };
  return Number.isInteger(v) ? { name, type: T.INT, i: v } : { name, type: T.FLOAT, f: v };
}

export function floatTensor(name: string, dims: number[], data: Float32Array): ITensor {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();
  return { name, dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData: bytes };
}

export function int64Tensor(name: string, values: number[]): ITensor {
  const data = BigInt64Array.from(values.map(BigInt));
  return {
    name,
    dims: [values.length],
    dataType: onnx.TensorProto.DataType.INT64,
    rawData: new Uint8Array(data.buffer),
  };
}

/** [k, k, in, out] (tfjs) -> [out, in, k, k] (ONNX Conv). */
export function toOihw(w: NamedWeight): Float32Array {
  const [kh, kw, ci, co] = w.shape;
  const out = new Float32Array(w.data.length);
  for (let y = 0; y < kh; y++)
    for (let x = 0; x < kw; x++)
      for (let i = 0; i < ci; i++)
        for (let o = 0; o < co; o++)
          out[((o * ci + i) * kh + y) * kw + x] = w.data[((y * kw + x) * ci + i) * co + o];
  return out;
}

/** The inputs' batch, height and width: free (named), or fixed numbers. */
export interface Dims {
  batch: number | string;
  height: number | string;
  width: number | string;
}
export const FREE: Dims = { batch: "batch", height: "height", width: "width" };

export function valueInfo(name: string, dims: (number | string)[]): IValueInfo {
  return {
    name,
    type: {
      tensorType: {
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: { dim: dims.map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

/** The serialised ModelProto of a graph whose value `out` is the output `score` [B, 1, H, W]. */
export function encodeModel(
  g: { nodes: INode[]; initializers: ITensor[] },
  out: string,
  inputs: IValueInfo[],
  dims: Dims = FREE,
): Uint8Array {
  const graph: onnxProto.onnx.IGraphProto = {
    name: "score_unet",
    node: [...g.nodes, { opType: "Identity", input: [out], output: ["score"], name: "score" }],
    initializer: g.initializers,
    input: inputs,
    output: [valueInfo("score", [dims.batch, 1, dims.height, dims.width])],
  };
  const model = onnx.ModelProto.create({
    irVersion: 7,
    opsetImport: [{ domain: "", version: 13 }],
    producerName: "scorerecon",
    graph,
  });
  return onnx.ModelProto.encode(model).finish();
}
