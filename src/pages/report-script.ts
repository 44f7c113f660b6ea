/**
 * The report page's only script (inline, no library): filters the tensor table by role, rule, layer and a
 * name substring, and sorts it by a clicked column (numeric columns by value). Rows carry `data-role`,
 * `data-rule`, `data-layer`; cells carry `data-v` (the sort key).
 */
export const REPORT_SCRIPT = `
(function () {
  var table = document.getElementById('tensors');
  if (!table) return;
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var selects = Array.prototype.slice.call(document.querySelectorAll('select[data-filter]'));
  var nameBox = document.getElementById('filter-name');
  var shown = document.getElementById('shown-count');
  function apply() {
    var n = 0, needle = nameBox ? nameBox.value.toLowerCase() : '';
    rows.forEach(function (r) {
      var ok = selects.every(function (s) { return s.value === '' || r.getAttribute('data-' + s.getAttribute('data-filter')) === s.value; });
      if (ok && needle) ok = r.getAttribute('data-name').toLowerCase().indexOf(needle) >= 0;
      r.hidden = !ok;
      if (ok) n++;
    });
    shown.textContent = String(n);
  }
  selects.forEach(function (s) { s.addEventListener('change', apply); });
  if (nameBox) nameBox.addEventListener('input', apply);
  table.tHead.addEventListener('click', function (e) {
    var th = e.target.closest('th');
    if (!th) return;
    var col = th.cellIndex, numeric = th.getAttribute('data-type') === 'num';
    var dir = th.getAttribute('aria-sort') === 'ascending' ? -1 : 1;
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (c) { c.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', dir === 1 ? 'ascending' : 'descending');
    var key = function (r) { var v = r.cells[col].getAttribute('data-v'); return numeric ? (v === '' ? -Infinity : Number(v)) : v; };
    rows.slice().sort(function (a, b) {
      var x = key(a), y = key(b);
      return (x < y ? -1 : x > y ? 1 : rows.indexOf(a) - rows.indexOf(b)) * dir;
    }).forEach(function (r) { body.appendChild(r); });
  });
  apply();
})();
`;
