// A backend for vsamrd written in JavaScript, built into a WebAssembly
// component by ComponentizeJS (`jco componentize`) from the same WIT
// contract as every plugin (plugin-sdk/wit/backend.wit, world
// backend-core).
//
// Records live in the SQL database the backend is granted
// (`database = "sqlite:..."` or a PostgreSQL URL), in one table keyed by
// dataset and key; keys are compared as bytes (BLOB and BYTEA order is
// memcmp order), so a scan is an ORDER BY. The first write after a sync
// begins a transaction and `sync` commits it: vsamrd acknowledges a group
// of writes after one commit, and an instance dropped before its sync takes
// its uncommitted writes with it (the host rolls the transaction back).
//
// Errors: a function of the contract returns its `store-error` by throwing
// the variant as a plain object (`throw { tag: 'not-found' }`); an imported
// function that fails throws an error whose `payload` is the import's error
// variant.

import { currentDialect, query, execute, batch, begin, commit } from 'vsam:backend/sql@1.0.0';
import { write as log } from 'vsam:backend/log@1.0.0';

const TABLE = 'vsam_js_records';
const CATALOG = 'vsam_js_datasets';
let dialect = null;
// Whether a transaction is open (writes since the last sync).
let writing = false;

function write(what, statement, params) {
  if (!writing) {
    sql('beginning a transaction', () => begin());
    writing = true;
  }
  return sql(what, () => execute(statement, params));
}

function param(n) {
  return dialect === 'postgres' ? `$${n}` : `?${n}`;
}

function fail(error, what) {
  const cause = error && error.payload;
  if (!cause) throw error; // a bug: let the instance trap
  if (cause.tag === 'no-space') throw { tag: 'no-space', val: `${what}: ${cause.val}` };
  throw { tag: 'io', val: `${what}: ${cause.tag}${cause.val ? ': ' + cause.val : ''}` };
}

function sql(what, run) {
  try {
    return run();
  } catch (error) {
    fail(error, what);
  }
}

const blob = (bytes) => ({ tag: 'blob', val: bytes });
const text = (string) => ({ tag: 'text', val: string });

function exists(ds) {
  const rows = sql('reading the catalog', () =>
    query(`SELECT 1 FROM ${CATALOG} WHERE dataset = ${param(1)}`, [text(ds.name)]));
  return rows.length > 0;
}

function mustExist(ds) {
  if (!exists(ds)) throw { tag: 'no-such-dataset' };
}

function stored(ds, key) {
  const rows = sql('reading a record', () => query(
    `SELECT v FROM ${TABLE} WHERE dataset = ${param(1)} AND k = ${param(2)}`,
    [text(ds.name), blob(key)]));
  return rows.length ? rows[0][0].val : undefined;
}

export const store = {
  init(params) {
    writing = false;
    dialect = sql('asking the dialect', () => currentDialect());
    const bytes = dialect === 'postgres' ? 'BYTEA' : 'BLOB';
    sql('creating the tables', () => batch(
      `CREATE TABLE IF NOT EXISTS ${CATALOG} (dataset TEXT PRIMARY KEY);` +
      `CREATE TABLE IF NOT EXISTS ${TABLE} (dataset TEXT NOT NULL, k ${bytes} NOT NULL, v ${bytes} NOT NULL, PRIMARY KEY (dataset, k))`));
    log('debug', `javascript store ready on ${dialect}`);
  },

  create(ds, layout) {
    if (exists(ds)) throw { tag: 'already-exists' };
    write('defining the dataset', `INSERT INTO ${CATALOG} (dataset) VALUES (${param(1)})`, [text(ds.name)]);
  },

  destroy(ds) {
    mustExist(ds);
    write('removing the records', `DELETE FROM ${TABLE} WHERE dataset = ${param(1)}`, [text(ds.name)]);
    write('removing the dataset', `DELETE FROM ${CATALOG} WHERE dataset = ${param(1)}`, [text(ds.name)]);
  },

  get(ds, key) {
    const value = stored(ds, key);
    if (value === undefined) mustExist(ds);
    return value;
  },

  scan(ds, origin, dir, limit) {
    mustExist(ds);
    const forward = dir === 'forward';
    const params = [text(ds.name)];
    let bound = '';
    if (origin.tag !== 'edge') {
      const op = forward ? (origin.tag === 'inclusive' ? '>=' : '>') : (origin.tag === 'inclusive' ? '<=' : '<');
      bound = ` AND k ${op} ${param(2)}`;
      params.push(blob(origin.val));
    }
    const rows = sql('scanning', () => query(
      `SELECT k, v FROM ${TABLE} WHERE dataset = ${param(1)}${bound} ORDER BY k ${forward ? 'ASC' : 'DESC'} LIMIT ${limit}`,
      params));
    return rows.map((row) => ({ key: row[0].val, value: row[1].val }));
  },

  insert(ds, key, value) {
    mustExist(ds);
    if (stored(ds, key) !== undefined) throw { tag: 'duplicate-key' };
    write('inserting',
      `INSERT INTO ${TABLE} (dataset, k, v) VALUES (${param(1)}, ${param(2)}, ${param(3)})`,
      [text(ds.name), blob(key), blob(value)]);
  },

  replace(ds, key, value) {
    const changed = write('replacing',
      `UPDATE ${TABLE} SET v = ${param(3)} WHERE dataset = ${param(1)} AND k = ${param(2)}`,
      [text(ds.name), blob(key), blob(value)]);
    if (changed === 0n || changed === 0) {
      mustExist(ds);
      throw { tag: 'not-found' };
    }
  },

  delete(ds, key) {
    const changed = write('erasing',
      `DELETE FROM ${TABLE} WHERE dataset = ${param(1)} AND k = ${param(2)}`,
      [text(ds.name), blob(key)]);
    if (changed === 0n || changed === 0) {
      mustExist(ds);
      throw { tag: 'not-found' };
    }
  },

  append(ds, value) {
    mustExist(ds);
    // The next RBA: the last record's RBA plus its length.
    const last = sql('finding the last record', () => query(
      `SELECT k, v FROM ${TABLE} WHERE dataset = ${param(1)} ORDER BY k DESC LIMIT 1`,
      [text(ds.name)]));
    let rba = 0n;
    if (last.length) {
      const key = last[0][0].val;
      for (const byte of key) rba = (rba << 8n) | BigInt(byte);
      rba += BigInt(last[0][1].val.length);
    }
    const key = new Uint8Array(8);
    for (let i = 7; i >= 0; i--) {
      key[i] = Number(rba & 0xffn);
      rba >>= 8n;
    }
    store.insert(ds, key, value);
    return key;
  },

  flush(ds) {},

  sync() {
    if (writing) {
      writing = false;
      sql('committing', () => commit());
    }
  },
};
