/**
 * Stored rows from before results were checked for overflow (numbers.ts): JSON turned ±Infinity
 * and NaN into null, so such a row reads as a SUCCEEDED run or DONE global bound without its
 * numbers, which the API cannot return. At start-up each one is turned into what the server now
 * records for it: the runs FAILED with NUMERIC_OVERFLOW and their result dropped from the cache,
 * the model's global bound FAILED with the message. Only numbers stored as null count: a field
 * absent from an old result is not an overflow. Idempotent; complete rows are left alone.
 */
import type { AnalysisResult } from '../analysis/analyse.js';
import type { Store } from '../store/db.js';
import { incompleteNumbers, overflowError, overflowErrorAt, valueAt } from './numbers.js';
import { describedResult, modelGlobalBound } from './run-result.js';
import { apiTypes } from './schema.js';

export async function repairIncompleteNumbers(store: Store): Promise<{ results: number; models: number }> {
  const prisma = store.prisma;
  let results = 0;
  // An incomplete result holds a null somewhere (complete ones may too, where a number is optional).
  for (const row of await prisma.result.findMany({ where: { result: { contains: 'null' } }, select: { cacheKey: true, result: true } })) {
    const result = describedResult(JSON.parse(row.result) as AnalysisResult, null);
    const nulls = incompleteNumbers(apiTypes(), 'CertifyResult', result).filter((path) => valueAt(result, path) !== undefined);
    const overflow = overflowErrorAt('CertifyResult', nulls);
    if (!overflow) continue;
    await prisma.$transaction([
      prisma.run.updateMany({
        where: { cacheKey: row.cacheKey, status: 'SUCCEEDED' },
        data: { status: 'FAILED', message: overflow.message, errorCode: overflow.code, errorMessage: overflow.message },
      }),
      prisma.result.deleteMany({ where: { cacheKey: row.cacheKey } }),
    ]);
    results++;
  }
  let models = 0;
  for (const model of await prisma.model.findMany({ where: { globalStatus: 'DONE' } })) {
    // DONE without a bound, or with a bound missing a number.
    const overflow = overflowError(apiTypes(), 'NetworkBound', model.globalBound === null ? {} : modelGlobalBound(model));
    if (!overflow) continue;
    await prisma.model.updateMany({
      where: { id: model.id },
      data: { globalStatus: 'FAILED', globalError: overflow.message, globalBound: null, globalQuality: null, globalResult: null, globalMethod: null, globalCertificate: null },
    });
    models++;
  }
  return { results, models };
}
