// Validates an OpenAPI document with @apidevtools/swagger-parser, a validator
// independent of the kin-openapi one the Go tests use. Offline: it reads the
// file and resolves only the document's internal references.
import SwaggerParser from "@apidevtools/swagger-parser";

const file = process.argv[2];
try {
  const api = await SwaggerParser.validate(file);
  console.log(`${file}: valid OpenAPI ${api.openapi}, ${Object.keys(api.paths).length} paths`);
} catch (err) {
  console.error(`${file}: ${err.message}`);
  process.exit(1);
}
