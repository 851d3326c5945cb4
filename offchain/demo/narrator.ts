/** Readable demo output: numbered steps, indented facts, tables. */
export class Narrator {
  private step = 0;
  constructor(private readonly out: (line: string) => void = console.log) {}

  section(title: string): void {
    this.step += 1;
    this.out("");
    this.out(`== ${this.step}. ${title} ${"=".repeat(Math.max(0, 70 - title.length))}`);
  }

  say(line: string): void {
    this.out(`   ${line}`);
  }

  block(text: string): void {
    for (const line of text.split("\n")) this.out(`   ${line}`);
  }
}
