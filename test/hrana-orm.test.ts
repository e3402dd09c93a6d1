// Drizzle ORM (drizzle-orm/libsql) and Kysely (@libsql/kysely-libsql) as applications use
// them, against a sqlfleet cluster over Hrana (DESIGN §8): schema, inserts with returning,
// selects, updates, a transaction that commits and one that throws, and concurrent
// read-modify-write transactions on one row that lose no update; replicas stay identical.
import assert from 'node:assert/strict';
import { createClient, type Client } from '@libsql/client';
import { eq, sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/libsql';
import { integer, sqliteTable, text } from 'drizzle-orm/sqlite-core';
import { Kysely, sql as ksql, type Generated } from 'kysely';
import { LibsqlDialect } from '@libsql/kysely-libsql';
import { after } from 'node:test';
import { assertSameChecksums, query, useCluster, waitForIndex } from './helpers/cluster.js';

const { cluster, it } = useCluster({ slaves: 1 });
const clients: Client[] = [];
after(() => clients.forEach((c) => c.close()));

const users = sqliteTable('users', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  name: text('name').notNull().unique(),
  credits: integer('credits').notNull().default(0),
});

async function converged(): Promise<void> {
  const { master, nodes } = cluster();
  await waitForIndex(nodes, Number((await query(master, 'SELECT 1')).body.index));
  await assertSameChecksums(nodes);
}

it('drizzle-orm/libsql: schema, insert returning, select, update, transactions, no lost update', async () => {
  const { master, slaves } = cluster();
  for (const [node, url] of [
    [master, master.url],
    [slaves[0]!, slaves[0]!.url.replace(/^http/, 'ws')],
  ] as const) {
    const client = createClient({ url });
    clients.push(client);
    const db = drizzle(client);
    if (node === master) {
      await db.run(sql`CREATE TABLE users (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, credits INTEGER NOT NULL DEFAULT 0)`);
    }
    const tag = node === master ? 'm' : 's';
    const [ana] = await db.insert(users).values({ name: `ana-${tag}` }).returning();
    assert.equal(ana!.name, `ana-${tag}`);
    assert.equal(ana!.credits, 0);
    await db.update(users).set({ credits: 5 }).where(eq(users.id, ana!.id));
    assert.deepEqual(await db.select({ credits: users.credits }).from(users).where(eq(users.id, ana!.id)), [{ credits: 5 }]);

    await db.transaction(async (tx) => {
      const [row] = await tx.select().from(users).where(eq(users.id, ana!.id));
      await tx.update(users).set({ credits: row!.credits + 10 }).where(eq(users.id, ana!.id));
      await tx.insert(users).values({ name: `bob-${tag}` });
    });
    await assert.rejects(
      db.transaction(async (tx) => {
        await tx.update(users).set({ credits: 0 }).where(eq(users.id, ana!.id));
        throw new Error('changed my mind');
      }),
      /changed my mind/,
    );
    const [after] = await db.select().from(users).where(eq(users.id, ana!.id));
    assert.equal(after!.credits, 15, 'the committed transaction stays, the thrown one left nothing');
    assert.equal((await db.select().from(users).where(eq(users.name, `bob-${tag}`))).length, 1);

    // Many concurrent read-modify-write transactions on one row lose no update.
    const n = 12;
    await Promise.all(
      Array.from({ length: n }, () =>
        db.transaction(async (tx) => {
          const [row] = await tx.select().from(users).where(eq(users.id, ana!.id));
          await tx.update(users).set({ credits: row!.credits + 1 }).where(eq(users.id, ana!.id));
        }),
      ),
    );
    const [final] = await db.select().from(users).where(eq(users.id, ana!.id));
    assert.equal(final!.credits, 15 + n);
  }
  await converged();
});

interface KDb {
  pets: { id: Generated<number>; name: string; age: number };
}

it('kysely with @libsql/kysely-libsql: schema, insert returning, select, update, transactions', async () => {
  const { master, slaves } = cluster();
  for (const node of [master, slaves[0]!]) {
    const db = new Kysely<KDb>({ dialect: new LibsqlDialect({ url: node.url }) });
    try {
      if (node === master) await db.schema.createTable('pets').addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement()).addColumn('name', 'text', (c) => c.notNull()).addColumn('age', 'integer', (c) => c.notNull()).execute();
      const rex = await db.insertInto('pets').values({ name: `rex-${node.id}`, age: 3 }).returning(['id', 'name']).executeTakeFirstOrThrow();
      assert.equal(rex.name, `rex-${node.id}`);
      await db.updateTable('pets').set({ age: 4 }).where('id', '=', rex.id).execute();
      await db.transaction().execute(async (trx) => {
        const p = await trx.selectFrom('pets').select('age').where('id', '=', rex.id).executeTakeFirstOrThrow();
        await trx.updateTable('pets').set({ age: p.age + 1 }).where('id', '=', rex.id).execute();
      });
      await assert.rejects(
        db.transaction().execute(async (trx) => {
          await trx.deleteFrom('pets').where('id', '=', rex.id).execute();
          throw new Error('no');
        }),
        /no/,
      );
      const got = await db.selectFrom('pets').selectAll().where('id', '=', rex.id).executeTakeFirstOrThrow();
      assert.equal(got.age, 5);
      const count = await ksql<{ n: number }>`SELECT count(*) AS n FROM pets`.execute(db);
      assert.ok(Number(count.rows[0]!.n) >= 1);
    } finally {
      await db.destroy();
    }
  }
  await converged();
});
