// openapi-typescript resolved from this folder, so it finds the TypeScript 5 installed beside it
export { default, astToString } from 'openapi-typescript';
