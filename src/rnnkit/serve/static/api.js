// The API page of `rnnkit serve`: this server's /openapi.json rendered in the page (every operation, the fields of
// its JSON body with their types, defaults and meanings, and its answers), with nothing loaded from elsewhere.
"use strict";

async function main() {
  const spec = await (await fetch("/openapi.json")).json();
  document.getElementById("summary").textContent = `${spec.info.title}: ${spec.info.summary || ""} ` +
    "Every error is a JSON object {\"error\": \"one line\"}.";
  const operations = document.getElementById("operations");
  for (const [path, methods] of Object.entries(spec.paths)) {
    for (const [method, operation] of Object.entries(methods)) {
      operations.append(describe(spec, path, method, operation));
    }
  }
  window.apiReady = true;
}

function describe(spec, path, method, operation) {
  const section = element("section", "card");
  section.dataset.path = path;
  section.append(element("h2", "", `${method.toUpperCase()} ${path}`));
  if (operation.summary) section.append(element("p", "", operation.summary));
  const body = operation.requestBody && operation.requestBody.content["application/json"];
  if (body) {
    const schema = resolve(spec, body.schema);
    if (schema.description) section.append(element("p", "note", schema.description));
    const table = element("table", "fields");
    table.append(row("th", ["field", "type", "default", "meaning"]));
    const required = new Set(schema.required || []);
    for (const [name, field] of Object.entries(schema.properties || {})) {
      const shown = "default" in field ? JSON.stringify(field.default) : (required.has(name) ? "required" : "");
      table.append(row("td", [name, type(spec, field), shown, field.description || ""]));
    }
    section.append(table);
  }
  const answers = Object.entries(operation.responses || {}).map(([code, answer]) => `${code} ${answer.description}`);
  section.append(element("p", "note", `Answers: ${answers.join("; ")}.`));
  return section;
}

function resolve(spec, schema) {
  if (!schema || !schema.$ref) return schema || {};
  return schema.$ref.split("/").slice(1).reduce((node, key) => node[key], spec);
}

function type(spec, field) {
  if (field.$ref) return field.$ref.split("/").pop();
  if (field.anyOf) return field.anyOf.map((option) => type(spec, option)).join(" | ");
  if (field.type === "array") return `list of ${type(spec, field.items || {})}`;
  if (field.type === "object") return `object of ${type(spec, field.additionalProperties || {})}`;
  return field.type || "any";
}

main();
