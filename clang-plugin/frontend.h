/* clang-plugin/frontend.h - what frontend.cc and types.cc share: clang's
 * headers and the type mapping. Not for pass.cc, which sees only LLVM. */
#ifndef GOVINTERCEPT_FRONTEND_H
#define GOVINTERCEPT_FRONTEND_H

#include "clang/AST/ASTContext.h"
#include "clang/AST/Type.h"
#include "clang/AST/Decl.h"
#include "clang/Basic/Diagnostic.h"

bool gov_is_size_t(clang::QualType t);
char gov_type_code(clang::ASTContext &ctx, clang::QualType type, const clang::QualType *next,
		   bool is_return, const char **why);
/* return code, then one code per argument from `first` on: params are the
 * prototype's (this first for a member call), args the promoted types of
 * every argument passed. Empty, with *why, when a type has no code. */
std::string gov_call_types(clang::ASTContext &ctx, const std::vector<clang::QualType> &params,
			   const std::vector<clang::QualType> &args, clang::QualType ret,
			   unsigned first, const gov_libc_entry *libc, const char **why);
/* a warning's diagnostic id, -w and -Werror applied (frontend.cc) */
unsigned gov_warning_id(clang::DiagnosticsEngine &d, const char *format);
/* pragma.cc: #pragma gov_native names fd, or a push ... pop holds it */
bool gov_pragma_native(const clang::FunctionDecl *fd, const clang::SourceManager &sm);
/* a push never popped: a warning at its position */
void gov_pragma_finish(clang::DiagnosticsEngine &d);
#endif
