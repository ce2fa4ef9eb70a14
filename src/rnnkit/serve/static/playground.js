// The playground of `rnnkit serve`: one card per served model, built from GET /models. It talks to this server
// only (no CDN, nothing from elsewhere), so it works offline. Each card's state is in its data-state attribute
// (idle, running, done, error), which the browser tests wait on.
"use strict";

const FORMS = {
  lm: {
    fields: [["prime", "textarea", "Prime", ""], ["length", "number", "Tokens", "200"],
             ["temperature", "number", "Temperature", "0.8"], ["seed", "number", "Seed", ""]],
    button: "Generate", run: generate,
  },
  classify: { fields: [["text", "textarea", "Text", ""]], button: "Classify", run: classify },
  tag: { fields: [["sentence", "textarea", "Sentence (tokens separated by spaces)", ""]], button: "Tag", run: tag },
  translate: { fields: [["text", "textarea", "Sentence", ""], ["beam", "number", "Beam", ""]],
               button: "Translate", run: translate },
  forecast: { fields: [], button: "Forecast", run: forecast },
  music: { fields: [["steps", "number", "Steps", "64"], ["temperature", "number", "Temperature", "1"],
                    ["seed", "number", "Seed", ""]], button: "Compose", run: music },
};

async function main() {
  const status = document.getElementById("status");
  let served;
  try {
    served = await (await fetch("/models")).json();
  } catch (error) {
    status.textContent = `Cannot read /models: ${error}`;
    return;
  }
  const limits = served.limits;
  status.textContent = `${served.models.length} model(s); at most ${limits.max_input} characters per request, ` +
    `${limits.max_tokens} generated tokens, ${limits.timeout} s per request.`;
  for (const model of served.models) {
    if (FORMS[model.task]) document.getElementById("models").append(card(model));
  }
  window.playgroundReady = true;
}

function card(model) {
  const section = document.getElementById("card").content.firstElementChild.cloneNode(true);
  const spec = FORMS[model.task];
  section.dataset.model = model.name;
  section.dataset.task = model.task;
  section.dataset.state = "idle";
  section.querySelector(".name").textContent = model.name;
  section.querySelector(".task").textContent = `${model.task} · ${model.endpoint} · ${model.runtime}`;
  section.querySelector(".facts").textContent = facts(model);
  const form = section.querySelector("form");
  const fields = model.task === "forecast" ? seriesFields(model) : spec.fields;
  for (const [name, kind, label, value] of fields) {
    const wrap = document.createElement("label");
    wrap.textContent = label;
    const input = document.createElement(kind === "textarea" ? "textarea" : "input");
    if (kind !== "textarea") input.type = kind;
    if (kind === "number") input.step = "any";
    input.name = name;
    input.value = value;
    if (kind === "textarea") wrap.className = "wide";
    wrap.append(input);
    form.append(wrap);
  }
  const button = document.createElement("button");
  button.type = "submit";
  button.className = "run";
  button.textContent = spec.button;
  form.append(button);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = section.querySelector(".error");
    error.hidden = true;
    section.dataset.state = "running";
    button.disabled = true;
    try {
      await spec.run(model, values(form), section.querySelector(".output"), section);
      section.dataset.state = "done";
    } catch (failure) {
      error.textContent = failure.message;
      error.hidden = false;
      section.dataset.state = "error";
    } finally {
      button.disabled = false;
    }
  });
  return section;
}

function facts(model) {
  switch (model.task) {
    case "lm": return `A ${model.level}-level language model of ${model.vocab_size} tokens; ` +
      "the text streams as it is drawn.";
    case "classify": return `Classes: ${model.labels.join(", ")}.`;
    case "tag": return `Tags: ${model.tags.join(", ")}.`;
    case "forecast": return `Reads the last ${model.window} steps of ` +
      `${[model.target, ...model.features].join(", ")}; ` +
      `forecasts ${model.horizon} step(s) of ${model.target}.`;
    case "translate": return `Beam ${model.beam} by default.`;
    case "music": return `Pitches ${model.pitches[0]}–${model.pitches[1]} (MIDI numbers).`;
    default: return "";
  }
}

function seriesFields(model) {
  const fields = [model.target, ...model.features].map((name) => [`series.${name}`, "textarea",
    `${name}: numbers, oldest first (at least ${model.window})`, ""]);
  if (model.date_column) fields.push(["dates", "textarea", `${model.date_column}: one date per step`, ""]);
  return fields;
}

function values(form) {
  const result = {};
  for (const element of form.elements) {
    if (!element.name) continue;
    const value = element.value;
    if (element.type === "number") {
      if (value.trim() !== "") result[element.name] = Number(value);
    } else {
      result[element.name] = value;
    }
  }
  return result;
}

// POST a JSON body; the parsed answer, or an Error with the server's one-line message.
async function ask(path, body) {
  const response = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" },
                                       body: JSON.stringify(body) });
  const answer = await response.json();
  if (!response.ok) throw new Error(`${response.status}: ${answer.error}`);
  return answer;
}

async function generate(model, given, output, section) {
  const body = { model: model.name, prime: given.prime, stream: true, temperature: given.temperature };
  for (const key of ["length", "seed"]) if (key in given) body[key] = Math.round(given[key]);
  const response = await fetch("/generate", { method: "POST", body: JSON.stringify(body),
    headers: { "Content-Type": "application/json", Accept: "text/event-stream" } });
  if (!response.ok) throw new Error(`${response.status}: ${(await response.json()).error}`);
  output.replaceChildren();
  const pre = element("pre", "text");
  pre.append(element("span", "prime", given.prime));
  const text = element("span", "generated");
  pre.append(text);
  output.append(pre);
  for await (const [name, data] of events(response.body)) {
    if (name === "token") text.textContent += data.text;
    else if (name === "error") throw new Error(data.error);
    else if (name === "done") section.dataset.tokens = String(data.text.length);
  }
}

// The server-sent events of a response body, as [event name, parsed data].
async function* events(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message", data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) name = line.slice(7);
        else if (line.startsWith("data: ")) data += line.slice(6);
      }
      yield [name, JSON.parse(data)];
    }
  }
}

async function classify(model, given, output) {
  const answer = await ask("/classify", { model: model.name, text: given.text });
  const prediction = answer.predictions[0];
  output.replaceChildren();
  const ranked = Object.entries(prediction.probabilities).sort((a, b) => b[1] - a[1]);
  for (const [label, probability] of ranked) {
    const row = element("div", label === prediction.label ? "bar best" : "bar");
    row.dataset.label = label;
    const fill = element("div", "fill");
    fill.style.width = `${(100 * probability).toFixed(1)}%`;
    const track = element("div");
    track.append(fill);
    row.append(element("span", "label", label), track, element("span", "p", probability.toFixed(3)));
    output.append(row);
  }
}

async function tag(model, given, output) {
  const answer = await ask("/tag", { model: model.name, sentence: given.sentence });
  const { tokens, tags } = answer.predictions[0];
  output.replaceChildren();
  const line = element("div", "tokens");
  tokens.forEach((token, index) => {
    const pair = element("span", "token");
    pair.append(element("span", "word", token), element("span", "tag", tags[index]));
    line.append(pair);
  });
  output.append(line);
}

async function translate(model, given, output) {
  const body = { model: model.name, text: given.text };
  if ("beam" in given) body.beam = Math.round(given.beam);
  const answer = await ask("/translate", body);
  output.replaceChildren(element("pre", "text translation", answer.predictions[0].translation));
}

async function forecast(model, given, output) {
  const series = {};
  for (const [key, value] of Object.entries(given)) {
    if (!key.startsWith("series.")) continue;
    const numbers = value.split(/[\s,;]+/).filter((part) => part !== "").map(Number);
    if (numbers.some(Number.isNaN)) throw new Error(`${key.slice(7)}: give numbers only`);
    series[key.slice(7)] = numbers;
  }
  const body = { model: model.name, series };
  if (model.date_column) body.dates = given.dates.split(/[\s,;]+/).filter((part) => part !== "");
  const answer = await ask("/forecast", body);
  const table = element("table", "forecast");
  const key = "date" in answer.forecast[0] ? "date" : "step";
  table.append(row("th", [key, "forecast"]));
  for (const item of answer.forecast) table.append(row("td", [item[key], item.forecast.toPrecision(6)]));
  output.replaceChildren(table);
}

async function music(model, given, output) {
  const body = { model: model.name };
  for (const key of ["steps", "seed"]) if (key in given) body[key] = Math.round(given[key]);
  if ("temperature" in given) body.temperature = given.temperature;
  const answer = await ask("/music", body);
  const [low, high] = model.pitches;
  const canvas = element("canvas", "roll");
  canvas.width = Math.max(answer.frames.length, 1);
  canvas.height = high - low + 1;
  const context = canvas.getContext("2d");
  context.fillStyle = "#2f6ad9";
  answer.frames.forEach((pitches, step) => pitches.forEach((pitch) => context.fillRect(step, high - pitch, 1, 1)));
  output.replaceChildren(canvas, element("p", "note", `${answer.steps} steps; time runs left to right, pitch upward.`));
}

main();
