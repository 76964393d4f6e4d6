package analysis

import (
	_ "embed"
	"strconv"
	"strings"

	"github.com/pgwarden/pgwarden/policy"
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

// builtinOperatorNames lists the names of PostgreSQL 15's own operators
// (checked like builtinFunctionNames).
//
//go:embed builtin_operators.txt
var builtinOperatorNames string

// builtinOperators is the set of builtinOperatorNames, read-only.
var builtinOperators = func() map[string]bool {
	m := make(map[string]bool, 256)
	for _, name := range strings.Fields(builtinOperatorNames) {
		m[name] = true
	}
	return m
}()

// builtinOIDs lists "oid name" for every function PostgreSQL 15 defines
// itself (OIDs below 16384 are assigned by initdb, the same in every
// cluster of a version).
//
//go:embed builtin_oids.txt
var builtinOIDs string

// builtinByOID maps those OIDs to names, read-only.
var builtinByOID = func() map[uint32]string {
	m := make(map[uint32]string, 3500)
	for _, line := range strings.Split(builtinOIDs, "\n") {
		oid, name, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(oid, 10, 32)
		if err == nil {
			m[uint32(n)] = name
		}
	}
	return m
}()

// BuiltinFunction returns the name of the built-in function oid, and
// whether it is one.
func BuiltinFunction(oid uint32) (string, bool) {
	name, ok := builtinByOID[oid]
	return name, ok
}

// FunctionCall returns the statement that stands for a fast-path call of
// the function oid: a known built-in (writing when it writes), or a user
// function, whose effect is decided at run time.
func FunctionCall(oid uint32) *policy.Statement {
	st := &policy.Statement{Kind: policy.KindFunctionCall, Command: "FUNCTION CALL"}
	name, ok := BuiltinFunction(oid)
	if !ok {
		st.Writes = true
		st.RunTime = []string{"fast-path call of user function " + strconv.FormatUint(uint64(oid), 10)}
		return st
	}
	st.Functions = []policy.Function{{Name: name, Builtin: true}}
	builtinEffect(st, name)
	if name == "set_config" {
		st.Settings = []policy.Setting{{Name: "*", Via: "set_config"}}
	}
	return st
}

// builtinEffect records on st what calling the built-in function name
// does, as far as its name tells: a write, or SQL run from text.
func builtinEffect(st *policy.Statement, name string) {
	switch {
	case writingFunctions[name]:
		st.Writes = true
	case sqlRunningFunctions[name]:
		st.RunTime = append(st.RunTime, "function "+name+" runs SQL text")
	}
}

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
