/** The model tests' one way of asserting a refusal: an UnsupportedModelError with its code, message and node. */
import { UnsupportedModelError } from '../../src/errors.js';

export async function expectRefusal(run: () => unknown, message: RegExp, node?: string): Promise<UnsupportedModelError> {
  let error: unknown;
  try {
    await run();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(UnsupportedModelError);
  const refusal = error as UnsupportedModelError;
  expect(refusal.code).toBe('UNSUPPORTED_MODEL');
  expect(refusal.message).toMatch(message);
  if (node !== undefined) expect(refusal.node).toBe(node);
  return refusal;
}
