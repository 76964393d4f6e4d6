package analysis

import (
	_ "embed"
	"strings"
)

// builtinFunctionNames lists the names of the functions in pg_catalog of
// PostgreSQL 15 (TestBuiltinFunctions checks it against the test cluster,
// and regenerates it with -update).
//
//go:embed builtin_functions.txt
var builtinFunctionNames string

// builtinFunctions is the set of builtinFunctionNames. It is read-only
// after package initialisation.
var builtinFunctions = func() map[string]bool {
	m := make(map[string]bool, 3500)
	for _, name := range strings.Fields(builtinFunctionNames) {
		m[name] = true
	}
	return m
}()

// catalogRelationNames lists the relations of pg_catalog in PostgreSQL 15
// (checked like builtinFunctionNames).
//
//go:embed catalog_relations.txt
var catalogRelationNames string

// catalogRelations is the set of catalogRelationNames, read-only.
var catalogRelations = func() map[string]bool {
	m := make(map[string]bool, 256)
	for _, name := range strings.Fields(catalogRelationNames) {
		m[name] = true
	}
	return m
}()

// writingFunctions are built-in functions that change data: sequences,
// large objects, WAL.
var writingFunctions = map[string]bool{
	"nextval": true, "setval": true,
	"lo_create": true, "lo_creat": true, "lo_import": true, "lo_export": true, "lo_unlink": true,
	"lo_put": true, "lo_from_bytea": true, "lowrite": true, "lo_truncate": true, "lo_truncate64": true,
	"pg_logical_emit_message": true, "pg_create_restore_point": true, "pg_switch_wal": true,
	"pg_create_physical_replication_slot": true, "pg_create_logical_replication_slot": true,
	"pg_drop_replication_slot": true, "pg_copy_physical_replication_slot": true,
	"pg_copy_logical_replication_slot": true, "pg_replication_origin_create": true,
	"pg_replication_origin_drop": true, "pg_import_system_collations": true,
}

// sqlRunningFunctions are built-in functions that run SQL given as text,
// which the gateway cannot see.
var sqlRunningFunctions = map[string]bool{
	"query_to_xml": true, "query_to_xmlschema": true, "query_to_xml_and_xmlschema": true,
	"cursor_to_xml": true, "cursor_to_xmlschema": true,
	"table_to_xml": true, "table_to_xmlschema": true, "table_to_xml_and_xmlschema": true,
	"schema_to_xml": true, "schema_to_xmlschema": true, "schema_to_xml_and_xmlschema": true,
	"database_to_xml": true, "database_to_xmlschema": true, "database_to_xml_and_xmlschema": true,
	"ts_stat": true, "ts_rewrite": true,
}
