/**
 * Applies prisma/migrations/<name>/migration.sql in name order, each once, inside a transaction,
 * and records it in `_lipcert_migrations`. The Prisma CLI's `migrate` needs a schema engine that
 * cannot be downloaded offline, so the server migrates its own SQLite file at start-up.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';

/** The repository's prisma/migrations folder, found upwards from this file (src/ or dist/src/). */
export function migrationsDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'prisma', 'migrations');
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new Error('lipcert internal error: prisma/migrations not found above ' + fileURLToPath(import.meta.url));
}

/** Applies pending migrations to the database file; returns the names applied now. */
export function migrate(dbFile: string, dir = migrationsDir()): string[] {
  const db = new Database(dbFile);
  try {
    db.pragma('journal_mode = WAL');
    db.exec(`CREATE TABLE IF NOT EXISTS "_lipcert_migrations" (
      "name" TEXT NOT NULL PRIMARY KEY,
      "appliedAt" TEXT NOT NULL
    )`);
    const applied = new Set(
      (db.prepare('SELECT "name" FROM "_lipcert_migrations"').all() as { name: string }[]).map((r) => r.name),
    );
    const names = readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory() && existsSync(join(dir, e.name, 'migration.sql')))
      .map((e) => e.name)
      .sort();
    const now: string[] = [];
    for (const name of names) {
      if (applied.has(name)) continue;
      const sql = readFileSync(join(dir, name, 'migration.sql'), 'utf8');
      db.transaction(() => {
        db.exec(sql);
        db.prepare('INSERT INTO "_lipcert_migrations" ("name", "appliedAt") VALUES (?, ?)').run(name, new Date().toISOString());
      })();
      now.push(name);
    }
    return now;
  } finally {
    db.close();
  }
}
