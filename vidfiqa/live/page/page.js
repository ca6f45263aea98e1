/* vidfiqa live page: the people a `vidfiqa watch` saw, from its JSON API (docs/cameras.md).
 *
 * Two views of one page: the people seen (/), and one person's visits (/person/<n>).  Filters
 * live in the URL's query (camera, since, until, person), so a view can be bookmarked.  Every
 * few seconds the page asks only for what is new (since= the newest time it shows) and the
 * cameras' state; it does not reload.  Every image reports when it has loaded: the body's
 * data-images, data-images-loaded and data-images-broken count them (the tests read them).
 */
(function () {
  'use strict';

  const POLL_MS = 3000;
  const PAGE = 48;
  const body = document.body;
  const $ = (id) => document.getElementById(id);

  const route = location.pathname.match(/\/person\/(\d+)\/?$/);
  const personView = route ? Number(route[1]) : null;
  const query = new URLSearchParams(location.search);
  const filters = {};
  for (const key of ['camera', 'since', 'until', 'person']) {
    const value = (query.get(key) || '').trim();
    if (value) filters[key] = value;
  }

  // ---------------------------------------------------------------- helpers
  function h(tag, attrs, kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'text') e.textContent = v;
      else e.setAttribute(k, v);
    }
    for (const kid of kids || []) {
      if (kid === null || kid === undefined || kid === false) continue;
      e.appendChild(typeof kid === 'string' ? document.createTextNode(kid) : kid);
    }
    return e;
  }

  function url(path, params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params || {})) {
      if (v !== null && v !== undefined && v !== '') q.set(k, v);
    }
    const s = q.toString();
    return s ? path + '?' + s : path;
  }

  async function api(path, params) {
    const answer = await fetch(url(path, params), {cache: 'no-store'});
    let data = null;
    try { data = await answer.json(); } catch (e) { data = null; }
    if (!answer.ok) {
      const err = new Error((data && data.error) || ('HTTP ' + answer.status));
      err.status = answer.status;
      throw err;
    }
    return data;
  }

  function imageUrl(path) {
    return 'images/' + path.split('/').map(encodeURIComponent).join('/');
  }

  function tally() {
    let loaded = 0, broken = 0;
    for (const img of document.images) {
      if (img.complete && img.naturalWidth > 0) loaded++;
      else if (img.getAttribute('data-loaded') === '0') broken++;
    }
    body.setAttribute('data-images', document.images.length);
    body.setAttribute('data-images-loaded', loaded);
    body.setAttribute('data-images-broken', broken);
  }

  function image(path, alt) {
    if (!path) return h('div', {class: 'noimg', text: 'no image'});
    const img = h('img', {src: imageUrl(path), alt: alt, decoding: 'async'});
    img.addEventListener('load', () => { img.setAttribute('data-loaded', '1'); tally(); });
    img.addEventListener('error', () => { img.setAttribute('data-loaded', '0'); img.classList.add('broken'); tally(); });
    return img;
  }

  const pad = (n) => String(n).padStart(2, '0');
  const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

  function clock(iso) {
    if (!iso) return '?';
    const d = new Date(iso), now = new Date();
    const time = pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
    if (d.toDateString() === now.toDateString()) return time;
    return MONTHS[d.getMonth()] + ' ' + d.getDate() + (d.getFullYear() !== now.getFullYear() ? ' ' + d.getFullYear() : '') + ' ' + time;
  }

  function ago(iso) {
    if (!iso) return '';
    const s = (Date.now() - new Date(iso).getTime()) / 1000;
    if (s < 5) return 'just now';
    if (s < 60) return Math.round(s) + ' s ago';
    if (s < 3600) return Math.floor(s / 60) + ' min ago';
    if (s < 86400) return Math.floor(s / 3600) + ' h ago';
    return Math.floor(s / 86400) + ' d ago';
  }

  function agoSpan(iso) {
    return h('span', {class: 'ago', 'data-time': iso, text: ago(iso)});
  }

  function refreshTimes() {
    for (const e of document.querySelectorAll('.ago[data-time]')) e.textContent = ago(e.getAttribute('data-time'));
  }

  function duration(a, b) {
    if (!a || !b) return '';
    const s = Math.max(0, (new Date(b) - new Date(a)) / 1000);
    return s < 60 ? s.toFixed(1) + ' s' : Math.floor(s / 60) + ' min ' + Math.round(s % 60) + ' s';
  }

  function qualityBadge(q) {
    if (q === null || q === undefined) return null;
    return h('span', {class: 'badge q', title: 'face image quality of the best pick (higher is better)', text: 'q ' + q.toFixed(2)});
  }

  const MINUS = '\u2212';
  const num = (v, digits) => (v === null || v === undefined ? '?' : Number(v).toFixed(digits).replace('-', MINUS));
  function signed(v, digits) {
    if (v === null || v === undefined) return '?';
    const text = Math.abs(v).toFixed(digits);
    return (Number(text) === 0 ? '' : v > 0 ? '+' : MINUS) + text;
  }

  // Why a visit ended (the events' `ended`), in a few words; the value itself on hover.
  const ENDED = {lost: 'left', scene_cut: 'scene cut', identity_change: 'another person took over', end_of_input: 'input ended',
    interrupted: 'interrupted', max_duration: 'long visit, cut', stream_lost: 'camera lost', resolution_change: 'camera changed size',
    worker_restart: 'analysis restarted', shutdown: 'watch stopped'};

  // A pick's quality components, briefly: pose and size, then (unless short) the image
  // statistics; every component with its meaning on hover.
  function components(c, short) {
    if (!c) return null;
    const all = 'yaw ' + signed(c.yaw, 0) + '\u00b0, pitch ' + signed(c.pitch, 0) + '\u00b0 (head pose: yaw > 0 turned to the image\'s right, pitch > 0 up); ' +
      num(c.inter_eye_px, 0) + ' px between the eyes; sharpness ' + num(c.sharpness, 2) + ' (0-1, blur lowers it); exposure ' + signed(c.exposure, 1) +
      ' stops (< \u22121.5 dark, > +1.5 bright); noise ' + num(c.noise, 1) + ' grey levels; block artefacts ' + num(c.compression, 2) +
      ' (> 0.2 blocky); covered ' + num(c.occlusion, 2) + ' (probability)';
    const pose = h('div', {class: 'comp', title: all}, [
      h('span', {text: 'yaw ' + signed(c.yaw, 0) + '\u00b0'}),
      h('span', {text: 'pitch ' + signed(c.pitch, 0) + '\u00b0'}),
      h('span', {text: num(c.inter_eye_px, 0) + ' px'}),
    ]);
    if (short) return pose;
    const stats = h('div', {class: 'comp', title: all}, [
      h('span', {text: 'sharp ' + num(c.sharpness, 2)}),
      h('span', {text: 'exposure ' + signed(c.exposure, 1) + ' EV'}),
      h('span', {text: 'noise ' + num(c.noise, 1)}),
      h('span', {text: 'blocks ' + num(c.compression, 2)}),
      h('span', {text: 'covered ' + num(c.occlusion, 2)}),
    ]);
    return h('div', {}, [pose, stats]);
  }

  function reasons(list) {
    if (!list || !list.length) return null;
    return h('div', {class: 'reason', title: 'why the best face is poor', text: list.join(' \u00b7 ')});
  }

  function cursorTime(cursor) {
    return cursor ? Number(cursor.split(':')[0]) : null;
  }

  // ---------------------------------------------------------------- status and errors
    function status(ok, text) {
    const s = $('status');
    s.className = 'status ' + (ok ? 'ok' : 'bad');
    s.textContent = text;
  }

  function showError(err) {
    const box = $('error');
    if (!err) { box.hidden = true; body.removeAttribute('data-error'); return; }
    box.hidden = false;
    box.textContent = err.message;
    body.setAttribute('data-error', err.message);
  }

  // ---------------------------------------------------------------- cameras
  const cameraTiles = new Map();
  let cameraNames = [];

  function cameraTile(c) {
    const state = c.watched ? (c.up && c.analysing ? 'up' : 'down') : 'off';
    const label = c.watched ? (c.up ? (c.analysing ? 'up' : 'not analysed') : 'down') : 'not watched';
    const fps = c.fps === null || c.fps === undefined ? '\u2013' : c.fps.toFixed(1);
    const last = c.last;
    const tile = h('a', {class: 'camera ' + state + (filters.camera === c.camera ? ' selected' : ''), href: url('./', {camera: c.camera}),
      'data-camera': c.camera, 'data-up': c.up ? '1' : '0', 'data-last': last ? last.event_id : '',
      title: c.last_error ? 'last error: ' + c.last_error + (c.last_error_at ? ' (' + c.last_error_at + ')' : '') : null}, [
      h('div', {class: 'thumb'}, [last && last.image ? image(last.image, 'last face seen by ' + c.camera) : null]),
      h('div', {}, [
        h('div', {}, [h('span', {class: 'name', text: c.camera}), h('span', {class: 'state', text: label})]),
        h('div', {class: 'line'}, [h('b', {text: fps}), ' frames/s analysed \u00b7 ', h('b', {text: String(c.persons)}), ' people']),
        h('div', {class: 'line'}, ['last event ', last ? agoSpan(last.wall_time) : h('span', {text: 'none yet'})]),
      ]),
    ]);
    return tile;
  }

  function renderCameras(items) {
    const strip = $('cameras');
    const seen = new Set();
    let previous = null;
    for (const c of items) {
      seen.add(c.camera);
      const old = cameraTiles.get(c.camera);
      const tile = cameraTile(c);
      if (old && old.getAttribute('data-last') === tile.getAttribute('data-last')) {
        // The same last event: keep its loaded thumbnail instead of loading it again.
        tile.querySelector('.thumb').replaceWith(old.querySelector('.thumb'));
      }
      if (old) old.replaceWith(tile);
      else if (previous) previous.after(tile);
      else strip.prepend(tile);
      cameraTiles.set(c.camera, tile);
      previous = tile;
    }
    for (const [name, tile] of cameraTiles) {
      if (!seen.has(name)) { tile.remove(); cameraTiles.delete(name); }
    }
    const names = items.map((c) => c.camera);
    if (names.join() !== cameraNames.join()) {
      cameraNames = names;
      const select = document.querySelector('select[name=camera]');
      const chosen = filters.camera || '';
      select.textContent = '';
      select.appendChild(h('option', {value: '', text: 'every camera'}));
      for (const name of names.includes(chosen) || !chosen ? names : names.concat([chosen])) {
        select.appendChild(h('option', {value: name, text: name}));
      }
      select.value = chosen;
    }
    const up = items.filter((c) => c.watched && c.up && c.analysing).length;
    const watched = items.filter((c) => c.watched).length;
    $('totals').textContent = up + ' of ' + watched + ' cameras up';
    body.setAttribute('data-cameras', items.length);
    tally();
  }

  // ---------------------------------------------------------------- the people seen
  const cards = new Map();
  let newest = null;   // epoch seconds of the newest item shown: the next poll asks from there on
  let next = null;     // the cursor of the next (older) page

  function personCard(p) {
    const card = h('a', {class: 'card', href: url('person/' + p.person, {since: filters.since, until: filters.until}),
      'data-person': p.person, 'data-camera': p.camera, 'data-best': p.best_event || '', 'data-last': p.last_event,
      'data-visits': p.visits, title: 'person ' + p.person + ' (camera ' + p.camera + '\'s person ' + p.person_id + '): every visit'}, [
      h('div', {class: 'face'}, [image(p.image, 'person ' + p.person), qualityBadge(p.quality), h('span', {class: 'badge cam', text: p.camera})]),
      h('div', {class: 'info'}, [
        h('div', {class: 'who'}, [h('span', {class: 'pid', text: '#' + p.person}),
          h('span', {class: 'nvisits', text: p.visits + (p.visits === 1 ? ' visit' : ' visits')})]),
        h('div', {class: 'when', title: 'last seen ' + p.last_seen + ' \u00b7 first seen ' + p.first_seen}, [clock(p.last_event), ' \u00b7 ', agoSpan(p.last_event)]),
        components(p.components, true),
        reasons(p.best_face),
      ]),
    ]);
    return card;
  }

  function placeCard(p, where) {
    const old = cards.get(p.person);
    if (old && where === 'top' && old.getAttribute('data-last') === p.last_event && old.getAttribute('data-visits') === String(p.visits)) {
      return false;  // nothing new about this person
    }
    const card = personCard(p);
    if (old && old.getAttribute('data-best') === card.getAttribute('data-best')) {
      card.querySelector('.face img')?.replaceWith(old.querySelector('.face img') || card.querySelector('.face img'));
    }
    if (old) old.remove();
    const grid = $('grid');
    if (where === 'top') { grid.prepend(card); if (old || cards.size) card.classList.add('new'); }
    else grid.appendChild(card);
    cards.set(p.person, card);
    return true;
  }

  function countPersons() {
    body.setAttribute('data-persons', cards.size);
    $('empty').hidden = cards.size > 0;
    $('more').hidden = !next;
    const grid = $('grid');
    const t = $('title');
    t.textContent = 'People seen';
    const bits = [];
    if (filters.camera) bits.push('camera ' + filters.camera);
    if (filters.since) bits.push('since ' + filters.since);
    if (filters.until) bits.push('until ' + filters.until);
    t.appendChild(h('small', {text: grid.children.length + (next ? '+' : '') + ' shown' + (bits.length ? ' \u00b7 ' + bits.join(', ') : ' \u00b7 newest first')}));
    tally();
  }

  async function loadPersons(mine) {
    const page = await api('api/persons', {camera: filters.camera, since: filters.since, until: filters.until, limit: PAGE});
    if (mine !== generation) return;
    $('grid').className = 'grid';
    $('grid').textContent = '';
    cards.clear();
    for (const p of page.items) placeCard(p, 'end');
    newest = page.items.length ? cursorTime(page.items[0].cursor) : null;
    next = page.next;
    countPersons();
  }

  async function olderPersons() {
    if (!next) return;
    const page = await api('api/persons', {camera: filters.camera, since: filters.since, until: filters.until, limit: PAGE, before: next});
    for (const p of page.items) if (!cards.has(p.person)) placeCard(p, 'end');
    next = page.next;
    countPersons();
  }

  async function pollPersons(mine) {
    if (filters.until) return;  // a range that ends: nothing new comes into it
    // Only the persons with an event since the newest shown; their figures (visits, best face) over the filter's range.
    const page = await api('api/persons', {camera: filters.camera, since: filters.since, changed_since: newest !== null ? String(newest) : null, limit: 100});
    if (mine !== generation) return;
    let changed = false;
    for (let i = page.items.length - 1; i >= 0; i--) changed = placeCard(page.items[i], 'top') || changed;
    if (page.items.length) newest = Math.max(newest || 0, cursorTime(page.items[0].cursor));
    if (changed) countPersons();
  }

  // ---------------------------------------------------------------- one person
  const visitIds = new Set();
  let newestVisit = null;

  function renderPerson(p) {
    const box = $('person');
    box.hidden = false;
    box.textContent = '';
    box.setAttribute('data-person', p.person);
    box.append(
      h('div', {class: 'big'}, [image(p.image, 'person ' + p.person)]),
      h('div', {}, [
        h('h2', {}, ['Person ' + p.person, h('a', {class: 'back', href: url('./', {since: filters.since, until: filters.until}), text: '\u2190 everyone'})]),
        h('dl', {}, [
          h('dt', {text: 'camera'}), h('dd', {}, [h('a', {href: url('./', {camera: p.camera}), text: p.camera}), ' (its person ' + p.person_id + ')']),
          h('dt', {text: 'first seen'}), h('dd', {text: clock(p.first_seen)}),
          h('dt', {text: 'last seen'}), h('dd', {}, [clock(p.last_seen) + ' \u00b7 ', agoSpan(p.last_seen)]),
          h('dt', {text: 'visits'}), h('dd', {text: String(p.visits)}),
          h('dt', {text: 'best face'}), h('dd', {}, [qualityBadge(p.quality), ' ', p.best_event ? h('a', {href: 'api/events/' + encodeURIComponent(p.best_event), text: p.best_event}) : null]),
          p.components ? h('dt', {text: 'its components'}) : null, p.components ? h('dd', {}, [components(p.components, false)]) : null,
          p.best_face ? h('dt', {text: 'poor because'}) : null, p.best_face ? h('dd', {}, [reasons(p.best_face)]) : null,
        ]),
      ]),
    );
  }

  function visitRow(e) {
    const picks = (e.selected || []).map((s) => h('div', {class: 'pick', title: 'pick ' + s.rank + (s.wall_time ? ' at ' + s.wall_time : '')}, [
      image(s.face || s.crop, 'pick ' + s.rank),
      h('div', {text: '#' + s.rank + ' q ' + num(s.quality, 2)}),
      components(s.components, true),
    ]));
    return h('div', {class: 'visit', 'data-event': e.event_id, 'data-camera': e.camera}, [
      h('div', {class: 'main'}, [image(e.image, 'visit ' + e.event_id)]),
      h('div', {class: 'details'}, [
        h('div', {class: 'head'}, [
          h('span', {class: 't', text: clock(e.wall_time)}), agoSpan(e.wall_time),
          h('span', {class: 'span', title: 'ended: ' + e.ended + (e.segment > 1 ? ', part ' + e.segment : ''),
            text: 'in view ' + duration(e.first_seen, e.last_seen) + ' \u00b7 ' + e.num_detections + ' detections \u00b7 ' + (ENDED[e.ended] || e.ended)}),
          qualityBadge(e.quality),
          h('span', {class: 'badge cam', text: e.camera}),
          h('a', {class: 'id', href: 'api/events/' + encodeURIComponent(e.event_id), text: e.event_id}),
        ]),
        components(e.components, false),
        reasons(e.best_face),
        h('div', {class: 'picks'}, picks),
      ]),
    ]);
  }

  function placeVisit(e, where) {
    if (visitIds.has(e.event_id)) return false;
    visitIds.add(e.event_id);
    const row = visitRow(e);
    const grid = $('grid');
    if (where === 'top') { grid.prepend(row); row.classList.add('new'); } else grid.appendChild(row);
    return true;
  }

  function countVisits() {
    body.setAttribute('data-visits', visitIds.size);
    $('empty').hidden = visitIds.size > 0;
    $('more').hidden = !next;
    const t = $('title');
    t.textContent = 'Visits';
    t.appendChild(h('small', {text: visitIds.size + (next ? '+' : '') + ' shown, newest first' + (filters.since ? ' \u00b7 since ' + filters.since : '') + (filters.until ? ' \u00b7 until ' + filters.until : '')}));
    tally();
  }

  async function loadPerson(mine) {
    const page = await api('api/persons/' + personView, {since: filters.since, until: filters.until, limit: PAGE});
    if (mine !== generation) return;
    $('grid').className = 'visits';
    renderPerson(page.person);
    $('grid').textContent = '';
    visitIds.clear();
    for (const e of page.items) placeVisit(e, 'end');
    newestVisit = page.items.length ? cursorTime(page.items[0].cursor) : null;
    next = page.next;
    countVisits();
  }

  async function olderVisits() {
    if (!next) return;
    const page = await api('api/persons/' + personView, {since: filters.since, until: filters.until, limit: PAGE, before: next});
    for (const e of page.items) placeVisit(e, 'end');
    next = page.next;
    countVisits();
  }

  async function pollPerson(mine) {
    if (filters.until) return;
    const page = await api('api/persons/' + personView, {since: newestVisit !== null ? String(newestVisit) : filters.since, limit: 100});
    if (mine !== generation) return;
    let changed = false;
    for (let i = page.items.length - 1; i >= 0; i--) changed = placeVisit(page.items[i], 'top') || changed;
    if (page.items.length) newestVisit = Math.max(newestVisit || 0, cursorTime(page.items[0].cursor));
    if (changed) { renderPerson(page.person); countVisits(); }
  }

  // ---------------------------------------------------------------- filters
  function fillForm() {
    const form = $('filters');
    for (const key of ['since', 'until', 'person']) form.elements[key].value = filters[key] || (key === 'person' && personView ? personView : '');
    form.querySelector('.f-camera').hidden = personView !== null;  // a person is seen by one camera
  }

  $('filters').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const form = ev.target;
    const wanted = {};
    for (const key of ['camera', 'since', 'until', 'person']) {
      const value = (form.elements[key].value || '').trim();
      if (value) wanted[key] = value;
    }
    if (wanted.person && !/^\d+$/.test(wanted.person)) {
      showError(new Error('person: ' + JSON.stringify(wanted.person) + ' is not a person number (a positive whole number)'));
      return;
    }
    if (wanted.person) {  // one person: their page, with every visit in the range
      location.href = url('person/' + wanted.person, {since: wanted.since, until: wanted.until});
      return;
    }
    if (personView !== null) {
      location.href = url('./', wanted);
      return;
    }
    history.replaceState(null, '', url('./', wanted));
    for (const key of Object.keys(filters)) delete filters[key];
    Object.assign(filters, wanted);
    for (const tile of cameraTiles.values()) tile.classList.toggle('selected', tile.getAttribute('data-camera') === filters.camera);
    start();
  });

  $('more').addEventListener('click', () => {
    (personView !== null ? olderVisits() : olderPersons()).catch(showError);
  });

  // ---------------------------------------------------------------- the loop
  let timer = null;
  let generation = 0;   // a new filter starts a new generation: answers to an older one are dropped
  let loaded = false;   // the first page of the list is shown: from now on, poll for what is new
  let refused = false;  // the list's query was refused (400, 404): only the cameras are polled

  async function cameras() {
    const page = await api('api/cameras');
    renderCameras(page.items);
  }

  async function tick(mine) {
    if (mine !== generation) return;
    try {
      await cameras();
      if (mine !== generation) return;
      if (!loaded && !refused) {
        try {
          await (personView !== null ? loadPerson(mine) : loadPersons(mine));
          if (mine !== generation) return;
          loaded = true;
          showError(null);
        } catch (err) {
          if (mine !== generation) return;
          if (err.status === 400 || err.status === 404) refused = true;
          if (err.status === undefined) throw err;
          showError(err);  // 503: no store yet, asked again next time
        }
      } else if (loaded) {
        await (personView !== null ? pollPerson(mine) : pollPersons(mine));
      }
      status(true, 'live \u00b7 updated ' + clock(new Date().toISOString()));
      body.setAttribute('data-ready', '1');
      refreshTimes();
    } catch (err) {
      status(false, err.status === undefined ? 'cannot reach the watcher \u2013 retrying' : err.message);
    }
    if (mine !== generation) return;
    timer = setTimeout(() => tick(mine), document.hidden ? POLL_MS * 5 : POLL_MS);
  }

  function start() {
    generation++;
    clearTimeout(timer);
    loaded = refused = false;
    showError(null);
    fillForm();
    tick(generation);
  }

  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) { clearTimeout(timer); tick(generation); }
  });

  $('title').textContent = personView !== null ? 'Visits' : 'People seen';
  document.title = personView !== null ? 'Person ' + personView + ' \u00b7 vidfiqa live' : 'vidfiqa live';
  start();
})();
