/* tests/clang-plugin/broken.h - a header clang cannot parse (govexports
 * must name the line). */
long fine(int x);
long broken(int x
long after(void);
