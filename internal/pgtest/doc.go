// Package pgtest gives tests their own PostgreSQL databases on the server
// named by GAIA_TEST_DATABASE_URL (else DATABASE_URL, else the local
// postgres://postgres@127.0.0.1:5432/postgres), so test packages and tests
// never see each other's rows and can run in parallel.
//
// A test package calls Main from TestMain to get one database for the whole
// package (URL), and NewDatabase for a test that needs a blank one. Every
// database it creates it drops again.
//
// Tests never skip for want of PostgreSQL: if the server is not reachable,
// the test (or the whole package, from Main) fails and says how to start it.
// This package is for tests only and owns no schema.
package pgtest
