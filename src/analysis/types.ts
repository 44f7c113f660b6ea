/**
 * The analysis contract: what the graph says about each initializer, and the sites the passes rewrite.
 * Produced by `analyzeModel` (src/analysis/index.ts), consumed by the planner and passes.
 */

/** Parameter roles (DESIGN.md "Semantics"). */
export type Role =
  | 'embedding'
  | 'position_embedding'
  | 'hidden'
  | 'readout'
  | 'bias'
  | 'norm_scale'
  | 'norm_bias'
  /** Not a trained parameter: causal-mask buffers, rotary tables, shape constants, integer tensors. */
  | 'buffer'
  | 'unknown';

export const ROLES: readonly Role[] = [
  'embedding', 'position_embedding', 'hidden', 'readout', 'bias', 'norm_scale', 'norm_bias', 'buffer', 'unknown',
];

export interface ParamInfo {
  /** Initializer name in the main graph. */
  name: string;
  role: Role;
  /** One line: why this role (e.g. "data input of Gather node /wte/Gather feeding the residual stream"). */
  reason: string;
  shape: number[];
  dataType: number;
  elements: number;
  /** For weights: number of inputs each output unit sums over, and number of output units. */
  fanIn?: number;
  fanOut?: number;
  /** Axis of the stored tensor that runs over inputs (fan-in) and over outputs; used by per-row and N:M masks. */
  inputAxis?: number;
  outputAxis?: number;
  /** Transformer layer index when known (from names or graph position). */
  layer?: number;
  /** A hidden weight whose output is added into the residual stream (attention out-proj, MLP down-proj). */
  residualOutput?: boolean;
  /** Tie: this tensor is the same as / a transposed copy of another parameter. */
  tiedWith?: string;
  /** `value-reshaped`: a copy with the same values in the same order under other dims (sharing.ts). */
  tie?: 'identity' | 'value' | 'value-transposed' | 'value-reshaped';
  /** Copies of this parameter stored under other names (sharing.ts): folded into it, one parameter. */
  copies?: string[];
  /** Nodes (name or op#index) that consume it, for the report. */
  consumers: string[];
}

/** Where the attention-logit scale 1/√d_head is applied. */
export interface AttentionSite {
  /** `scale-before-qk`: only one of Q, K is scaled before QKᵀ (DistilBERT's q / √dim_per_head). */
  kind: 'div-after-qk' | 'mul-after-qk' | 'split-qk' | 'scale-before-qk' | 'scale-attribute' | 'runtime-sqrt';
  /** Nodes whose constant or attribute carries the scale. */
  nodes: string[];
  /** Constant inputs (initializer or Constant output) holding the scale, when there is one. */
  constants: string[];
  /** The scale the site applies now (e.g. 0.125 for 1/√64), as a multiplier on QKᵀ. */
  currentScale: number;
  dHead: number;
  layer?: number;
  reason: string;
  /** The QKᵀ MatMul (absent for fused ops). */
  qkMatMul?: string;
  /** The scaled attention logits QKᵀ·scale (output of the last scale node, or of QKᵀ when Q/K carry the scale), before any mask and Softmax. */
  logitsValue?: string;
  /** Scale constants that other nodes also read: clone them before rewriting (GPT-2 dynamo shares 0.5 with GELU). */
  sharedConstants?: string[];
  /**
   * The nodes a rewrite edits when not all of `nodes` (a factor that also scales another term is left alone):
   * scale constants of these Div/Mul nodes, or the `scale` attribute of the fused op.
   */
  rewriteNodes?: string[];
  /** A rewrite multiplies this node's output by target/current (a run-time scale, or no clean constant). */
  mulAfter?: string;
  /** Fused op with a pre-scaled Q/K: its own `scale` (attribute or default); `currentScale` is the product. */
  attributeScale?: number;
  /** Terms added onto the logits before a factor of the scale (relative-position bias, a mask): kept as they are. */
  sharedScaleTerms?: string[];
}

export interface BlockOutput {
  /** Value name of the block's output (what coord-check records). */
  value: string;
  /** `residual_stream`: the stream after the last block (its last residual Add), as CompleteP's depth coordinate check. */
  kind: 'embedding' | 'attention' | 'mlp' | 'attention_logits' | 'output_logits' | 'residual_stream';
  layer?: number;
  /** For attention/mlp: `pre-residual` = the block's projection output (bias added) before the residual Add. */
  point?: 'pre-residual' | 'residual-sum';
}

/**
 * A residual branch: the value a block's attention or MLP branch adds into the residual stream (its output
 * projection plus bias), read only on the way to the residual Add. CompleteP / depth-µP multiply it by
 * m_L^(−α) there (docs/notes/depth-unit-rules.md §1a, §5.1). A parallel block (x + attn + mlp) has two.
 */
export interface ResidualBranch {
  value: string;
  kind: 'attention' | 'mlp';
  layer?: number;
  /** The output projection whose output this is. */
  projection: string;
  /** The residual Add (label) and its output, the stream after this block's contribution. */
  add: string;
  sum: string;
}

export interface Analysis {
  params: ParamInfo[];
  /** Residual branches in graph order (empty for models without residual blocks). */
  residualBranches: ResidualBranch[];
  attention: AttentionSite[];
  /** The graph output carrying the logits, and the readout weight producing them. */
  logits?: { output: string; node: string; readout?: string };
  /** Values right after each embedding lookup (where α_input multiplies). */
  embeddingOutputs: { param: string; value: string }[];
  blocks: BlockOutput[];
  dModel?: number;
  dHead?: number;
  nLayers?: number;
  warnings: string[];
}
