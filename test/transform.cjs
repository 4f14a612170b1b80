/**
 * @swc/jest with one line in front of every module: `const Math = globalThis.Math;`. Jest runs
 * modules in a vm context, whose global object answers through interceptors, so V8 cannot treat a
 * global `Math` as a constant there and does not inline Math.abs/min/max/sqrt in hot loops: the
 * tight method's certify() took 7x as long under Jest as in Node. A module-scope const restores
 * that (same object, same line numbers: the prelude shares the first line).
 */
const { createTransformer } = require('@swc/jest');

const PRELUDE = 'const Math = globalThis.Math; ';

module.exports = {
  createTransformer(options) {
    const swc = createTransformer(options);
    return {
      ...swc,
      process: (src, filename, jestOptions) => swc.process(PRELUDE + src, filename, jestOptions),
      processAsync: (src, filename, jestOptions) => swc.processAsync(PRELUDE + src, filename, jestOptions),
      getCacheKey: (src, filename, ...rest) => swc.getCacheKey(PRELUDE + src, filename, ...rest),
    };
  },
};
