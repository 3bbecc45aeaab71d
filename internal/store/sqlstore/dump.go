package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// DumpTable describes one table of a dump: its columns in the order rows
// carry their values, and its row count.
type DumpTable struct {
	Name    string
	Columns []string
	Rows    int64
}

// DumpInfo describes a whole dump; Tables are in foreign-key order, parents
// first, which is also the order Dump streams them in.
type DumpInfo struct {
	Engine        string
	SchemaVersion int
	Tables        []DumpTable
}

// RowSource feeds Restore. NextRow returns the next row of table, in the
// table's dumped column order, and io.EOF once that table's rows are done.
type RowSource interface {
	NextRow(table string) ([]any, error)
}

// migrationsTable is bookkeeping: a backup records its version instead.
const migrationsTable = "schema_migrations"

// Dump reads every table not in exclude from one consistent snapshot. begin
// gets the table list and row counts before any row; row gets each row with
// values of type nil, int64, float64, bool, string or []byte.
func (db *DB) Dump(ctx context.Context, exclude map[string]bool, begin func(DumpInfo) error,
	row func(table string, values []any) error) error {
	opts := &sql.TxOptions{ReadOnly: true}
	if db.dialect.name == "postgres" {
		opts.Isolation = sql.LevelRepeatableRead
	}
	// SQLite in WAL mode: a read transaction sees one snapshot from its first
	// read until it ends, while the writer carries on.
	tx, err := db.read.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("sqlstore: dump: starting snapshot: %w", err)
	}
	defer tx.Rollback()
	version, err := appliedVersion(ctx, tx)
	if err != nil {
		return fmt.Errorf("sqlstore: dump: %w", err)
	}
	schema, err := db.loadSchema(ctx, tx)
	if err != nil {
		return fmt.Errorf("sqlstore: dump: %w", err)
	}
	info := DumpInfo{Engine: db.dialect.name, SchemaVersion: version}
	for _, t := range schema.order {
		if exclude[t] || t == migrationsTable {
			continue
		}
		var n int64
		if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+quoteIdent(t)).Scan(&n); err != nil {
			return fmt.Errorf("sqlstore: dump: counting %s: %w", t, err)
		}
		info.Tables = append(info.Tables, DumpTable{Name: t, Columns: schema.columns[t], Rows: n})
	}
	if err := begin(info); err != nil {
		return err
	}
	for _, t := range info.Tables {
		if err := dumpTable(ctx, tx, t, row); err != nil {
			return err
		}
	}
	return nil
}

func dumpTable(ctx context.Context, tx *sql.Tx, t DumpTable, row func(string, []any) error) error {
	rows, err := tx.QueryContext(ctx, "SELECT "+quoteList(t.Columns)+" FROM "+quoteIdent(t.Name))
	if err != nil {
		return fmt.Errorf("sqlstore: dump: reading %s: %w", t.Name, err)
	}
	defer rows.Close()
	values := make([]any, len(t.Columns))
	dest := make([]any, len(t.Columns))
	for i := range values {
		dest[i] = &values[i]
	}
	var n int64
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("sqlstore: dump: reading %s: %w", t.Name, err)
		}
		out := make([]any, len(values))
		for i, v := range values {
			if out[i], err = normalizeValue(v); err != nil {
				return fmt.Errorf("sqlstore: dump: %s.%s: %w", t.Name, t.Columns[i], err)
			}
		}
		if err := row(t.Name, out); err != nil {
			return err
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlstore: dump: reading %s: %w", t.Name, err)
	}
	if n != t.Rows {
		return fmt.Errorf("sqlstore: dump: %s returned %d rows, counted %d: snapshot not consistent", t.Name, n, t.Rows)
	}
	return nil
}

// normalizeValue maps driver types onto the few a dump carries.
func normalizeValue(v any) (any, error) {
	switch x := v.(type) {
	case nil, int64, float64, bool, string, []byte:
		return x, nil
	case int32:
		return int64(x), nil
	case int16:
		return int64(x), nil
	case float32:
		return float64(x), nil
	default:
		return nil, fmt.Errorf("unsupported column type %T", v)
	}
}

// Restore replaces the contents of every table in info, except those in
// keep, with the rows from src, in one transaction. Tables not in info are
// left as they are; so are rows of other tables that a cascading delete would
// remove, unless their parent row is gone after the restore. It refuses a
// dump of another schema version and changes nothing on any error.
func (db *DB) Restore(ctx context.Context, info DumpInfo, keep map[string]bool, src RowSource) error {
	schema, err := db.loadSchema(ctx, db.read)
	if err != nil {
		return fmt.Errorf("sqlstore: restore: %w", err)
	}
	restored := map[string]bool{}
	for _, t := range info.Tables {
		if keep[t.Name] || t.Name == migrationsTable {
			continue
		}
		if err := schema.checkColumns(t); err != nil {
			return fmt.Errorf("sqlstore: restore: %w", err)
		}
		restored[t.Name] = true
	}
	run := func(rt restoreTx) error { return db.restoreIn(ctx, rt, schema, info, restored, src) }
	if db.write != nil {
		return db.restoreSQLite(ctx, run)
	}
	return db.restorePostgres(ctx, run)
}

func (db *DB) restoreIn(ctx context.Context, rt restoreTx, schema *dbSchema, info DumpInfo,
	restored map[string]bool, src RowSource) error {
	current, err := rt.queryInt(ctx, "SELECT COALESCE(MAX(version), 0) FROM "+migrationsTable)
	if err != nil {
		return fmt.Errorf("reading schema version: %w", err)
	}
	if int(current) != info.SchemaVersion {
		return fmt.Errorf("backup is of schema version %d, the database is at %d: restore into a database at version %d",
			info.SchemaVersion, current, info.SchemaVersion)
	}
	saved, err := saveDependents(ctx, rt, schema, restored)
	if err != nil {
		return err
	}
	for _, t := range slices.Backward(schema.order) {
		if restored[t] {
			if err := rt.exec(ctx, "DELETE FROM "+quoteIdent(t)); err != nil {
				return fmt.Errorf("emptying %s: %w", t, err)
			}
		}
	}
	for _, t := range info.Tables {
		next := func() ([]any, error) { return src.NextRow(t.Name) }
		if !restored[t.Name] {
			if err := skipRows(next); err != nil {
				return fmt.Errorf("reading %s: %w", t.Name, err)
			}
			continue
		}
		n, err := rt.load(ctx, t, next)
		if err != nil {
			return fmt.Errorf("loading %s: %w", t.Name, err)
		}
		if n != t.Rows {
			return fmt.Errorf("loading %s: got %d rows, the backup lists %d", t.Name, n, t.Rows)
		}
	}
	if err := restoreDependents(ctx, rt, schema, saved); err != nil {
		return err
	}
	if db.dialect.name == "postgres" {
		return fixSequences(ctx, rt, schema, restored)
	}
	return nil
}

func skipRows(next func() ([]any, error)) error {
	for {
		if _, err := next(); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
	}
}

// saveDependents copies every table outside the restore whose rows a
// cascading delete of the restored tables could reach, directly or through
// another such table; parents come first, as in schema.order.
func saveDependents(ctx context.Context, rt restoreTx, schema *dbSchema, restored map[string]bool) ([]string, error) {
	var saved []string
	reached := func(fk foreignKey) bool { return restored[fk.parent] || slices.Contains(saved, fk.parent) }
	for _, t := range schema.order {
		if restored[t] || !slices.ContainsFunc(schema.fks[t], reached) {
			continue
		}
		q := "CREATE TEMP TABLE " + quoteIdent(savedName(t)) + " AS SELECT * FROM " + quoteIdent(t)
		if err := rt.exec(ctx, q); err != nil {
			return nil, fmt.Errorf("saving %s: %w", t, err)
		}
		saved = append(saved, t)
	}
	return saved, nil
}

// restoreDependents puts back the saved rows a cascade removed, except those
// whose parent row no longer exists: a live delete would have removed them too.
func restoreDependents(ctx context.Context, rt restoreTx, schema *dbSchema, saved []string) error {
	for _, t := range saved {
		var conds []string
		for _, fk := range schema.fks[t] {
			var nulls, match []string
			for i, c := range fk.columns {
				nulls = append(nulls, "s."+quoteIdent(c)+" IS NULL")
				match = append(match, "p."+quoteIdent(fk.parentColumns[i])+" = s."+quoteIdent(c))
			}
			conds = append(conds, "("+strings.Join(nulls, " OR ")+" OR EXISTS (SELECT 1 FROM "+
				quoteIdent(fk.parent)+" p WHERE "+strings.Join(match, " AND ")+"))")
		}
		cols := quoteList(schema.columns[t])
		stmts := []string{
			"INSERT INTO " + quoteIdent(t) + " (" + cols + ") SELECT " + prefixList("s.", schema.columns[t]) +
				" FROM " + quoteIdent(savedName(t)) + " s WHERE " + strings.Join(conds, " AND ") + " ON CONFLICT DO NOTHING",
			"DROP TABLE " + quoteIdent(savedName(t)),
		}
		for _, q := range stmts {
			if err := rt.exec(ctx, q); err != nil {
				return fmt.Errorf("putting back %s: %w", t, err)
			}
		}
	}
	return nil
}

func savedName(table string) string { return "steward_restore_keep_" + table }

// fixSequences moves every serial column's sequence past the restored rows.
func fixSequences(ctx context.Context, rt restoreTx, schema *dbSchema, restored map[string]bool) error {
	for _, t := range schema.order {
		if !restored[t] {
			continue
		}
		for _, c := range schema.serials[t] {
			q := "SELECT setval(pg_get_serial_sequence($1, $2), COALESCE(MAX(" + quoteIdent(c) + "), 0) + 1, false) FROM " + quoteIdent(t)
			if _, err := rt.queryInt(ctx, q, quoteIdent(t), c); err != nil {
				return fmt.Errorf("setting the sequence of %s.%s: %w", t, c, err)
			}
		}
	}
	return nil
}

// restoreTx is the little a restore needs from either engine's transaction.
type restoreTx interface {
	exec(ctx context.Context, q string, args ...any) error
	queryInt(ctx context.Context, q string, args ...any) (int64, error)
	// load inserts rows from next until io.EOF and returns how many.
	load(ctx context.Context, t DumpTable, next func() ([]any, error)) (int64, error)
}

// restoreSQLite runs on the single writer connection, so the group
// committer's batches queue behind the restore instead of interleaving.
func (db *DB) restoreSQLite(ctx context.Context, run func(restoreTx) error) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: restore: starting transaction: %w", err)
	}
	defer tx.Rollback()
	// Checked at COMMIT: self-references (tenants.parent_id) need not arrive in order.
	if _, err := tx.ExecContext(ctx, "PRAGMA defer_foreign_keys = ON"); err != nil {
		return fmt.Errorf("sqlstore: restore: %w", err)
	}
	if err := run(sqliteRestoreTx{tx}); err != nil {
		return fmt.Errorf("sqlstore: restore: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: restore: committing: %w", err)
	}
	return nil
}

type sqliteRestoreTx struct{ tx *sql.Tx }

func (s sqliteRestoreTx) exec(ctx context.Context, q string, args ...any) error {
	_, err := s.tx.ExecContext(ctx, q, args...)
	return err
}

func (s sqliteRestoreTx) queryInt(ctx context.Context, q string, args ...any) (int64, error) {
	var n sql.NullInt64
	err := s.tx.QueryRowContext(ctx, q, args...).Scan(&n)
	return n.Int64, err
}

func (s sqliteRestoreTx) load(ctx context.Context, t DumpTable, next func() ([]any, error)) (int64, error) {
	marks := make([]string, len(t.Columns))
	for i := range marks {
		marks[i] = fmt.Sprintf("$%d", i+1)
	}
	stmt, err := s.tx.PrepareContext(ctx, "INSERT INTO "+quoteIdent(t.Name)+" ("+quoteList(t.Columns)+") VALUES ("+strings.Join(marks, ", ")+")")
	if err != nil {
		return 0, err
	}
	defer stmt.Close()
	var n int64
	for {
		values, err := next()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		if len(values) != len(t.Columns) {
			return n, fmt.Errorf("row has %d values for %d columns", len(values), len(t.Columns))
		}
		if _, err := stmt.ExecContext(ctx, values...); err != nil {
			return n, err
		}
		n++
	}
}

// restorePostgres uses COPY: one statement per table, so foreign keys
// between rows of the same table are checked once the table is complete.
func (db *DB) restorePostgres(ctx context.Context, run func(restoreTx) error) error {
	conn, err := db.read.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sqlstore: restore: %w", err)
	}
	defer conn.Close()
	return conn.Raw(func(driverConn any) error {
		sc, ok := driverConn.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("sqlstore: restore: unexpected driver connection %T", driverConn)
		}
		tx, err := sc.Conn().Begin(ctx)
		if err != nil {
			return fmt.Errorf("sqlstore: restore: starting transaction: %w", err)
		}
		defer tx.Rollback(context.WithoutCancel(ctx))
		if err := run(pgRestoreTx{tx}); err != nil {
			return fmt.Errorf("sqlstore: restore: %w", err)
		}
		if err := tx.Commit(ctx); err != nil {
			return fmt.Errorf("sqlstore: restore: committing: %w", err)
		}
		return nil
	})
}

type pgRestoreTx struct{ tx pgx.Tx }

func (p pgRestoreTx) exec(ctx context.Context, q string, args ...any) error {
	_, err := p.tx.Exec(ctx, q, args...)
	return err
}

func (p pgRestoreTx) queryInt(ctx context.Context, q string, args ...any) (int64, error) {
	var n *int64
	if err := p.tx.QueryRow(ctx, q, args...).Scan(&n); err != nil || n == nil {
		return 0, err
	}
	return *n, nil
}

func (p pgRestoreTx) load(ctx context.Context, t DumpTable, next func() ([]any, error)) (int64, error) {
	src := &copySource{next: next, width: len(t.Columns)}
	n, err := p.tx.CopyFrom(ctx, pgx.Identifier{t.Name}, t.Columns, src)
	if err == nil {
		err = src.err
	}
	return n, err
}

// copySource adapts a row stream to pgx.CopyFromSource.
type copySource struct {
	next   func() ([]any, error)
	width  int
	values []any
	err    error
}

func (c *copySource) Next() bool {
	c.values, c.err = c.next()
	if errors.Is(c.err, io.EOF) {
		c.err = nil
		return false
	}
	if c.err == nil && len(c.values) != c.width {
		c.err = fmt.Errorf("row has %d values for %d columns", len(c.values), c.width)
	}
	return c.err == nil
}

func (c *copySource) Values() ([]any, error) { return c.values, nil }
func (c *copySource) Err() error             { return c.err }

// dbSchema is what dump and restore learn from the database catalogue.
type dbSchema struct {
	order   []string // foreign-key order, parents first
	columns map[string][]string
	fks     map[string][]foreignKey
	serials map[string][]string // PostgreSQL columns fed by a sequence
}

type foreignKey struct {
	parent                 string
	columns, parentColumns []string
}

func (s *dbSchema) checkColumns(t DumpTable) error {
	have, ok := s.columns[t.Name]
	if !ok {
		return fmt.Errorf("table %s of the backup does not exist in the database", t.Name)
	}
	if !sameSet(have, t.Columns) {
		return fmt.Errorf("table %s has columns (%s) in the backup but (%s) in the database",
			t.Name, strings.Join(t.Columns, ", "), strings.Join(have, ", "))
	}
	return nil
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	sa, sb := slices.Clone(a), slices.Clone(b)
	slices.Sort(sa)
	slices.Sort(sb)
	return slices.Equal(sa, sb)
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func (db *DB) loadSchema(ctx context.Context, q querier) (*dbSchema, error) {
	postgres := db.dialect.name == "postgres"
	tablesQ := `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\' ORDER BY rowid`
	if postgres {
		tablesQ = `SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY c.oid`
	}
	created, err := queryStrings(ctx, q, tablesQ)
	if err != nil {
		return nil, fmt.Errorf("listing tables: %w", err)
	}
	s := &dbSchema{columns: map[string][]string{}, fks: map[string][]foreignKey{}, serials: map[string][]string{}}
	for _, t := range created {
		if s.columns[t], err = queryStrings(ctx, q, columnsQuery(postgres, false), t); err != nil {
			return nil, fmt.Errorf("listing columns of %s: %w", t, err)
		}
		if postgres {
			if s.serials[t], err = queryStrings(ctx, q, columnsQuery(true, true), t); err != nil {
				return nil, fmt.Errorf("listing serial columns of %s: %w", t, err)
			}
		}
		if s.fks[t], err = loadForeignKeys(ctx, q, postgres, t); err != nil {
			return nil, fmt.Errorf("listing foreign keys of %s: %w", t, err)
		}
	}
	s.order = fkOrder(created, s.fks)
	return s, nil
}

func columnsQuery(postgres, serialOnly bool) string {
	if !postgres {
		return `SELECT name FROM pragma_table_info($1) ORDER BY cid`
	}
	q := `SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1`
	if serialOnly {
		q += ` AND column_default LIKE 'nextval(%'`
	}
	return q + ` ORDER BY ordinal_position`
}

func loadForeignKeys(ctx context.Context, q querier, postgres bool, table string) ([]foreignKey, error) {
	query := `SELECT id, "table", "from", COALESCE("to", '') FROM pragma_foreign_key_list($1) ORDER BY id, seq`
	if postgres {
		query = `SELECT c.oid, p.relname, a.attname, pa.attname
			FROM pg_catalog.pg_constraint c
			JOIN pg_catalog.pg_class t ON t.oid = c.conrelid
			JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
			JOIN pg_catalog.pg_class p ON p.oid = c.confrelid
			CROSS JOIN LATERAL unnest(c.conkey, c.confkey) WITH ORDINALITY AS k(child, parent, ord)
			JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.child
			JOIN pg_catalog.pg_attribute pa ON pa.attrelid = c.confrelid AND pa.attnum = k.parent
			WHERE c.contype = 'f' AND n.nspname = current_schema() AND t.relname = $1
			ORDER BY c.oid, k.ord`
	}
	rows, err := q.QueryContext(ctx, query, table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []foreignKey
	var lastID int64 = -1
	for rows.Next() {
		var id int64
		var parent, col, parentCol string
		if err := rows.Scan(&id, &parent, &col, &parentCol); err != nil {
			return nil, err
		}
		if parentCol == "" {
			return nil, fmt.Errorf("foreign key to %s names no parent column", parent)
		}
		if id != lastID {
			out = append(out, foreignKey{parent: parent})
			lastID = id
		}
		fk := &out[len(out)-1]
		fk.columns = append(fk.columns, col)
		fk.parentColumns = append(fk.parentColumns, parentCol)
	}
	return out, rows.Err()
}

// fkOrder sorts tables so parents come before children, keeping creation
// order otherwise; a cycle falls back to creation order.
func fkOrder(created []string, fks map[string][]foreignKey) []string {
	placed := map[string]bool{}
	var out []string
	for len(out) < len(created) {
		progress := false
		for _, t := range created {
			if placed[t] {
				continue
			}
			ready := true
			for _, fk := range fks[t] {
				if fk.parent != t && !placed[fk.parent] && slices.Contains(created, fk.parent) {
					ready = false
				}
			}
			if ready {
				placed[t], progress = true, true
				out = append(out, t)
			}
		}
		if !progress {
			for _, t := range created {
				if !placed[t] {
					placed[t] = true
					out = append(out, t)
				}
			}
		}
	}
	return out
}

func queryStrings(ctx context.Context, q querier, query string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

func quoteIdent(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }

func quoteList(names []string) string { return prefixList("", names) }

func prefixList(prefix string, names []string) string {
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = prefix + quoteIdent(n)
	}
	return strings.Join(quoted, ", ")
}
