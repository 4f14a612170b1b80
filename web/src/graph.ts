/**
 * A model's graph drawn beside its layer list: each layer reads the layer above it unless it says
 * otherwise, and every other read (a residual shortcut, a Concat branch, the network input read
 * again) is a lane in a gutter, from the row that writes the tensor (╮, or the top edge for the
 * network input) down through the rows it passes (│) to the row that reads it (╯). Lanes are reused
 * once free, so a ResNet needs two. Pure functions: the page renders the strings.
 */

export interface Wired {
  index: number;
  /** Layers read (−1: the network input). */
  inputs: readonly number[];
}

interface Edge {
  from: number;
  to: number;
  lane: number;
}

/** Reads other than "the layer just above": the edges the gutter draws, each on a lane. */
function skipEdges(layers: readonly Wired[]): Edge[] {
  const edges: Edge[] = [];
  for (const l of layers) for (const j of new Set(l.inputs)) if (j !== l.index - 1) edges.push({ from: j, to: l.index, lane: 0 });
  edges.sort((a, b) => a.from - b.from || a.to - b.to);
  // Interval colouring: a lane is free for an edge that starts below the row where the lane's last edge ended.
  const endOf: number[] = [];
  for (const e of edges) {
    let lane = endOf.findIndex((end) => end < e.from);
    if (lane < 0) lane = endOf.length;
    endOf[lane] = e.to;
    e.lane = lane;
  }
  return edges;
}

/** One string per layer, a character per lane: '╮' an edge starts at this row, '│' passes, '╯' ends. */
export function graphGutter(layers: readonly Wired[]): string[] {
  const edges = skipEdges(layers);
  const lanes = edges.reduce((n, e) => Math.max(n, e.lane + 1), 0);
  return layers.map((l) => {
    const cells = new Array<string>(lanes).fill(' ');
    for (const e of edges) {
      if (e.from === l.index) cells[e.lane] = '╮';
      else if (e.to === l.index) cells[e.lane] = '╯';
      else if (e.from < l.index && l.index < e.to) cells[e.lane] = '│';
    }
    return cells.join('');
  });
}

/** What a layer reads, in words: '' for the layer above, else the rows (and 'input'), joined by its op. */
export function readsLabel(layer: Wired & { kind: string }): string {
  const name = (j: number) => (j < 0 ? 'input' : `#${j}`);
  if (layer.inputs.length === 1 && layer.inputs[0] === layer.index - 1) return '';
  const joiner = layer.kind === 'add' ? ' + ' : layer.kind === 'concat' ? ' ‖ ' : ', ';
  return layer.inputs.map(name).join(joiner);
}
