// "Type as you go": a WS text stream fed from the text box as it is typed, and the words
// the server times (`words` events, seconds of audio) highlighted as they are heard.
// What was typed since the last send goes as a text piece; text already sent cannot be
// unsaid, so an edit before its end is not sent (only text appended after it).

export class LiveText {
  constructor(state, textBox, wordsBox) {
    this.state = state; // window.playground: textSent, words, wordNow
    this.textBox = textBox;
    this.wordsBox = wordsBox;
  }

  reset() {
    this.wordsBox.replaceChildren();
    this.wordsBox.hidden = true;
  }

  // the stream `s` ({ws, textEnded}) gets what was typed since the last send
  send(s) {
    if (!s.ws || s.ws.readyState !== WebSocket.OPEN || s.textEnded) return;
    const text = this.textBox.value;
    const sent = this.state.textSent;
    if (!text.startsWith(sent) || text.length === sent.length) return;
    s.ws.send(JSON.stringify({ type: "text", text: text.slice(sent.length) }));
    this.state.textSent = text;
  }

  // the rest of the text, then `end`: the stream ends when its audio is done
  end(s) {
    this.send(s);
    s.textEnded = true;
    if (s.ws.readyState === WebSocket.OPEN) s.ws.send(JSON.stringify({ type: "end" }));
  }

  addWords(words) {
    this.wordsBox.hidden = false;
    for (const w of words) {
      this.state.words.push(w);
      const span = document.createElement("span");
      span.textContent = w.word;
      span.className = "pending";
      this.wordsBox.append(span, " ");
    }
  }

  // each word as it is heard: `seconds` of audio played (the worklet's clock)
  highlight(seconds) {
    const spans = this.wordsBox.querySelectorAll("span");
    let now = -1;
    this.state.words.forEach((w, i) => {
      if (w.start <= seconds) now = i;
      spans[i].className = w.start > seconds ? "pending" : seconds < w.end ? "now" : "heard";
    });
    this.state.wordNow = now;
  }
}
