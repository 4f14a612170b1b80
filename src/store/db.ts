/**
 * Opens the store: <dataDir>/lipcert.db (SQLite through Prisma's better-sqlite3 driver adapter)
 * after applying pending migrations, <dataDir>/models/ for the ONNX files and <dataDir>/datasets/ for
 * the .npz files of datasets.
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { PrismaBetterSqlite3 } from '@prisma/adapter-better-sqlite3';
import { PrismaClient } from './generated/client.js';
import { migrate } from './migrate.js';

export type { PrismaClient } from './generated/client.js';
export type { Model as ModelRow, Input as InputRow, Run as RunRow, Result as ResultRow } from './generated/client.js';
export type { Dataset as DatasetRow, DatasetRun as DatasetRunRow, DatasetImage as DatasetImageRow } from './generated/client.js';

export interface Store {
  prisma: PrismaClient;
  dataDir: string;
  modelsDir: string;
  datasetsDir: string;
  /** Migrations applied by this open. */
  migrated: string[];
  close(): Promise<void>;
}

export async function openStore(dataDir: string): Promise<Store> {
  const dir = resolve(dataDir);
  const modelsDir = join(dir, 'models');
  const datasetsDir = join(dir, 'datasets');
  mkdirSync(modelsDir, { recursive: true });
  mkdirSync(datasetsDir, { recursive: true });
  const dbFile = join(dir, 'lipcert.db');
  const migrated = migrate(dbFile);
  const prisma = new PrismaClient({ adapter: new PrismaBetterSqlite3({ url: `file:${dbFile}` }) });
  await prisma.$connect();
  return {
    prisma,
    dataDir: dir,
    modelsDir,
    datasetsDir,
    migrated,
    close: () => prisma.$disconnect(),
  };
}
