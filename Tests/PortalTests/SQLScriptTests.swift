@testable import Portal
import Testing

@Suite("SQL script splitting")
struct SQLScriptTests {
    @Test func splitsOnTopLevelSemicolonsOnly() {
        let script = """
            -- a comment; with a semicolon
            CREATE TABLE a (x text DEFAULT 'semi;colon', "we;ird" int);
            /* block; /* nested; */ still comment; */
            CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END; $$;
            CREATE FUNCTION g() RETURNS text LANGUAGE sql AS $body$ SELECT 'a;b' $body$;
            SELECT 'it''s; fine';
            ;
            SELECT $1
            """
        let statements = SQLScript.statements(in: script)
        #expect(statements.count == 5)
        #expect(statements[0] == #"CREATE TABLE a (x text DEFAULT 'semi;colon', "we;ird" int)"#)
        #expect(statements[1].hasSuffix("$$ BEGIN RETURN 1; END; $$"))
        #expect(statements[2].hasSuffix("$body$ SELECT 'a;b' $body$"))
        #expect(statements[3] == "SELECT 'it''s; fine'")
        #expect(statements[4] == "SELECT $1")
    }

    @Test func theFoundationMigrationSplitsIntoWholeStatements() throws {
        let migrations = try Migration.load(from: TestPaths.migrations)
        let foundation = try #require(migrations.first)
        let statements = SQLScript.statements(in: foundation.sql)
        #expect(statements.contains { $0.hasPrefix("CREATE FUNCTION portal_accept_launch") && $0.hasSuffix("$$") })
        #expect(!statements.contains { $0.isEmpty })
    }
}
