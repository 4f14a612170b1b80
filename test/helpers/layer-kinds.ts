/**
 * A network's layers as short strings for the import tests: kind, '+relu' or '+ACTIVATION' when an
 * activation follows, and '<i,j' when a layer reads other layers than the one before it.
 */
import { activationName, activationOf } from '../../src/model/activations.js';
import type { Network } from '../../src/model/ir.js';

export function layerKinds(network: Network): string[] {
  return network.layers.map((l) => {
    const activation = activationOf(l);
    const suffix = activation && l.kind !== 'relu' && l.kind !== 'activation' ? `+${activationName(activation)}` : l.kind === 'activation' ? `:${activationName(activation!)}` : '';
    return `${l.kind}${suffix}${l.inputs ? `<${l.inputs.join(',')}` : ''}`;
  });
}
