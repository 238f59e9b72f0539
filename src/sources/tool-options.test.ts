import { describe, expect, it } from "vitest";
import { selectsOption } from "./tool-options.ts";

describe("selectsOption", () => {
  const mysql = { mysql: true };
  it("reads long options by any prefix, as getopt_long and my_getopt do", () => {
    expect(selectsOption("--file=/tmp/x", ["file"], "")).toBe("--file");
    expect(selectsOption("--fil=/tmp/x", ["file"], "")).toBe("--file");
    expect(selectsOption("--por=3399", ["port"], "", mysql)).toBe("--port");
    expect(selectsOption("--format-x", ["format"], "")).toBeUndefined();
    expect(selectsOption("--no-owner", ["file", "format"], "")).toBeUndefined();
  });

  it("reads MySQL spellings: underscores, loose-, disable-, enable- and false values", () => {
    expect(selectsOption("--result_file=/tmp/x", ["result-file"], "", mysql)).toBe("--result-file");
    expect(selectsOption("--loose-result-file=/tmp/x", ["result-file"], "", mysql)).toBe("--result-file");
    expect(selectsOption("--disable-single-transaction", ["skip-single-transaction"], "", mysql)).toBe("--skip-single-transaction");
    expect(selectsOption("--single_transaction=OFF", ["skip-single-transaction"], "", mysql)).toBe("--skip-single-transaction");
    expect(selectsOption("--single-transaction", ["skip-single-transaction"], "", mysql)).toBeUndefined();
    expect(selectsOption("--enable-ssl", ["ssl"], "", mysql)).toBe("--ssl");
    expect(selectsOption("--port=0", ["port"], "", mysql)).toBe("--port");
    // getopt_long has no such spellings: pg_dump itself refuses these.
    expect(selectsOption("--result_file=/tmp/x", ["result-file"], "")).toBeUndefined();
  });

  it("matches a family of options by its first word", () => {
    expect(selectsOption("--ssl-key=k.pem", [], "", mysql, ["ssl"])).toBe("--ssl-…");
    expect(selectsOption("--ssl_ca=ca.pem", [], "", mysql, ["ssl"])).toBe("--ssl-…");
  });

  it("reads a short cluster letter by letter up to the first letter that takes a value", () => {
    expect(selectsOption("-vf/tmp/x", [], "f", { shortWithValue: "ft" })).toBe("-f");
    expect(selectsOption("-tfoo", [], "f", { shortWithValue: "ft" })).toBeUndefined();
    expect(selectsOption("-v", [], "f")).toBeUndefined();
    expect(selectsOption("plain", ["plain"], "p")).toBeUndefined();
  });
});
