import { defineDrill } from "lifeboat";

export default defineDrill({
  name: "example-db-weekly",
  job: "example-db",
  schedule: "0 4 * * 0",
  checks: {
    rowCounts: "exact",
    queries: [{ name: "customers exist", sql: "select count(*) from customers", min: 1 }],
  },
});
