// The page-building helpers that both pages of `rnnkit serve` use (playground.js and api.js); each page loads this
// script first, so these are globals of the page.
"use strict";

function row(cell, values) {
  const tr = document.createElement("tr");
  for (const value of values) tr.append(element(cell, "", String(value)));
  return tr;
}

function element(name, className = "", text = "") {
  const made = document.createElement(name);
  if (className) made.className = className;
  if (text) made.textContent = text;
  return made;
}
